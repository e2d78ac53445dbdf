// ChainID: the name of a stack of layers (OCI image spec, config.md "Layer ChainID"):
// ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
// A snapshot is keyed by the chain ID of the layers up to and including its own, so two images
// share a snapshot exactly when they share the whole stack below it.
import { digestOf, type Digest } from '../oci/digest.js';

/** The chain ID of every prefix of `diffIds`, lowest layer first. */
export const chainIds = (diffIds: readonly Digest[]): readonly Digest[] =>
  diffIds.reduce<Digest[]>((acc, diffId) => {
    const below = acc[acc.length - 1];
    acc.push(below === undefined ? diffId : digestOf(`${below} ${diffId}`));
    return acc;
  }, []);
