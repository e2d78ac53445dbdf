// Challenge: the WWW-Authenticate header of a 401, decoded (RFC 7235):
//   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:x:pull"
//   Basic realm="Registry Realm"
export interface Challenge {
  readonly scheme: 'bearer' | 'basic';
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/** Every challenge in the header value; unknown schemes are dropped. Pure. */
export const parseChallenges = (header: string | undefined): readonly Challenge[] => {
  if (!header) return [];
  const out: Challenge[] = [];
  let s = header.trim();
  let current: { scheme: string; params: Record<string, string> } | undefined;
  const push = () => {
    if (current && (current.scheme === 'bearer' || current.scheme === 'basic')) out.push(current as Challenge);
  };
  while (s.length > 0) {
    s = s.replace(/^[\s,]+/, '');
    const name = TOKEN.exec(s)?.[0];
    if (!name) break;
    const after = s.slice(name.length).replace(/^\s*/, '');
    if (after.startsWith('=') && current) {
      // a parameter of the current challenge
      let rest = after.slice(1).replace(/^\s*/, '');
      let value = '';
      if (rest.startsWith('"')) {
        let i = 1;
        for (; i < rest.length && rest[i] !== '"'; i++) {
          if (rest[i] === '\\' && i + 1 < rest.length) i++;
          value += rest[i];
        }
        rest = rest.slice(i + 1);
      } else {
        value = TOKEN.exec(rest)?.[0] ?? '';
        rest = rest.slice(value.length);
      }
      current.params[name.toLowerCase()] = value;
      s = rest;
    } else {
      push();
      current = { scheme: name.toLowerCase(), params: {} };
      s = after;
    }
  }
  push();
  return out;
};
