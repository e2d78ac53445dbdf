// tsd-build's entry: main.ts is the shell (it reads process.argv when imported).
void import('./main.js');
