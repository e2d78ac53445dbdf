// Expand: the substitution rules of the reference per instruction. Substituted: ADD, COPY, ENV,
// EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG defaults, and the flags --from,
// --chown, --chmod, --checksum, --platform and RUN --mount values. Not substituted: RUN, CMD,
// ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER (the shell or the runtime does it) and ONBUILD
// triggers (they expand when they run in a child image).
import * as E from 'fp-ts/lib/Either.js';
import type { Failure } from '../../failure.js';
import type { Flag, Instruction, KeyValue, Mount } from './ast.js';
import { dockerfileError } from './error.js';
import { expandHeredoc, processWord, processWords, type Vars } from './lex.js';

export interface ExpandContext {
  readonly file: string;
  readonly escape: string;
}

type R<T> = E.Either<Failure, T>;

/** Expands one instruction with `vars` (ENV over ARG already merged by the caller). */
export const expandInstruction = (i: Instruction, vars: Vars, ctx: ExpandContext): R<Instruction> => {
  const opts = { escape: ctx.escape };
  const err = (m: string) => dockerfileError('SubstitutionError', ctx.file, i.lines.start, `${i.keyword}: ${m}`);
  const word = (w: string): R<string> => E.mapLeft(err)(processWord(w, vars, opts));
  const words = (w: string): R<string[]> => E.mapLeft(err)(processWords(w, vars, opts));
  const all = <T>(xs: readonly T[], f: (x: T) => R<string>): R<string[]> => {
    const out: string[] = [];
    for (const x of xs) {
      const r = f(x);
      if (E.isLeft(r)) return r;
      out.push(r.right);
    }
    return E.right(out);
  };
  const optional = (w: string | undefined): R<string | undefined> => (w === undefined ? E.right(undefined) : word(w));
  const pairs = (ps: readonly KeyValue[]): R<KeyValue[]> => {
    const out: KeyValue[] = [];
    for (const p of ps) {
      const k = word(p.key);
      if (E.isLeft(k)) return k;
      const v = word(p.value);
      if (E.isLeft(v)) return v;
      out.push({ key: k.right, value: v.right });
    }
    return E.right(out);
  };
  const flags = (names: readonly string[]): R<Flag[]> => {
    const out: Flag[] = [];
    for (const f of i.flags) {
      if (f.value === undefined || !names.includes(f.name)) out.push(f);
      else {
        const v = word(f.value);
        if (E.isLeft(v)) return v;
        out.push({ name: f.name, value: v.right });
      }
    }
    return E.right(out);
  };
  const set = <T extends object>(o: T, k: string, v: string | undefined): T => (v === undefined ? o : { ...o, [k]: v });

  switch (i.keyword) {
    case 'FROM': {
      const image = word(i.image);
      const platform = optional(i.platform);
      const f = flags(['platform']);
      if (E.isLeft(image)) return image;
      if (E.isLeft(platform)) return platform;
      if (E.isLeft(f)) return f;
      return E.right(set({ ...i, image: image.right, flags: f.right }, 'platform', platform.right));
    }
    case 'ENV':
    case 'LABEL': {
      const p = pairs(i.pairs);
      return E.isLeft(p) ? p : E.right({ ...i, pairs: p.right });
    }
    case 'WORKDIR': {
      const v = word(i.path);
      return E.isLeft(v) ? v : E.right({ ...i, path: v.right });
    }
    case 'USER': {
      const v = word(i.user);
      return E.isLeft(v) ? v : E.right({ ...i, user: v.right });
    }
    case 'STOPSIGNAL': {
      const v = word(i.signal);
      return E.isLeft(v) ? v : E.right({ ...i, signal: v.right });
    }
    case 'EXPOSE': {
      const out: string[] = [];
      for (const p of i.ports) {
        const r = words(p);
        if (E.isLeft(r)) return r;
        out.push(...r.right);
      }
      return E.right({ ...i, ports: out });
    }
    case 'VOLUME': {
      const v = all(i.paths, word);
      return E.isLeft(v) ? v : E.right({ ...i, paths: v.right });
    }
    case 'ARG': {
      const out = [];
      for (const a of i.args) {
        if (a.default === undefined) out.push(a);
        else {
          const v = word(a.default);
          if (E.isLeft(v)) return v;
          out.push({ name: a.name, default: v.right });
        }
      }
      return E.right({ ...i, args: out });
    }
    case 'COPY':
    case 'ADD': {
      const docNames = new Set(i.heredocs.map((h) => h.name));
      const isDoc = (s: string) => /^\d*<<-?/.test(s) && docNames.has(s.replace(/^\d*<<-?/, '').replace(/^["']|["']$/g, ''));
      const sources = all(i.sources, (s) => (isDoc(s) ? E.right(s) : word(s)));
      const dest = word(i.dest);
      const f = flags(['from', 'chown', 'chmod', 'checksum']);
      if (E.isLeft(sources)) return sources;
      if (E.isLeft(dest)) return dest;
      if (E.isLeft(f)) return f;
      const heredocs = [];
      for (const h of i.heredocs) {
        if (!h.expand) heredocs.push(h);
        else {
          const c = expandHeredoc(h.content, vars, ctx.escape);
          if (E.isLeft(c)) return E.left(err(c.left));
          heredocs.push({ ...h, content: c.right });
        }
      }
      let out: Instruction = { ...i, sources: sources.right, dest: dest.right, flags: f.right, heredocs };
      for (const k of ['from', 'chown', 'chmod', ...(i.keyword === 'ADD' ? ['checksum'] : [])]) {
        const v = optional((i as unknown as Record<string, string | undefined>)[k]);
        if (E.isLeft(v)) return v;
        out = set(out, k, v.right);
      }
      return E.right(out);
    }
    case 'RUN': {
      const mounts: Mount[] = [];
      for (const m of i.mounts) {
        const options: Record<string, string> = {};
        for (const [k, v] of Object.entries(m.options)) {
          const r = word(v);
          if (E.isLeft(r)) return r;
          options[k] = r.right;
        }
        let out: Mount = { ...m, options };
        for (const k of ['target', 'source', 'from', 'id', 'mode', 'uid', 'gid', 'env', 'size'] as const) out = set(out, k, options[k]);
        mounts.push(out);
      }
      return E.right({ ...i, mounts });
    }
    default:
      return E.right(i);
  }
};
