/**
 * PFX built to ask for a lot of work while staying small: many encrypted ContentInfos or shrouded key bags, each
 * declaring a large PKCS#12 PBE iteration count over a few bytes of ciphertext. Password-less with a Key
 * Vault-style SHA-1 MAC (so the MAC verifies and the reader goes on to the bags), as issue 13 describes the attack.
 */
import { randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { dataContentInfo, explicit0, oid, octets, seq, wrapPfx } from '../../handler/certs/pkcs12Writer.js';

const { asn1, pki } = forge;
const U = asn1.Class.UNIVERSAL;
const CTX = asn1.Class.CONTEXT_SPECIFIC;
const PBE_3DES = pki.oids['pbeWithSHAAnd3-KeyTripleDES-CBC'] as string;

function integer(n: number): forge.asn1.Asn1 {
  return asn1.create(U, asn1.Type.INTEGER, false, asn1.integerToDer(n).getBytes());
}

function pbeAlgorithm(iterations: number): forge.asn1.Asn1 {
  return seq([oid(PBE_3DES), seq([octets(randomBytes(8).toString('binary')), integer(iterations)])]);
}

/** `count` encryptedData ContentInfos, each 3DES under `iterations` PKCS#12 PBE iterations. */
export function pfxWithEncryptedSafes(count: number, iterations: number): Buffer {
  const infos = Array.from({ length: count }, () =>
    seq([
      oid(pki.oids['encryptedData'] as string),
      explicit0([seq([integer(0), seq([oid(pki.oids['data'] as string), pbeAlgorithm(iterations), asn1.create(CTX, 0, false, randomBytes(16).toString('binary'))])])]),
    ]),
  );
  return wrapPfx(asn1.toDer(seq(infos)).getBytes(), null);
}

/** One plain SafeContents holding `count` pkcs8ShroudedKeyBags, each under `iterations` PBE iterations. */
export function pfxWithShroudedKeys(count: number, iterations: number): Buffer {
  const bags = Array.from({ length: count }, () =>
    seq([oid(pki.oids['pkcs8ShroudedKeyBag'] as string), explicit0([seq([pbeAlgorithm(iterations), octets(randomBytes(16).toString('binary'))])])]),
  );
  return wrapPfx(asn1.toDer(seq([dataContentInfo(seq(bags))])).getBytes(), null);
}

/** A valid PFX with its MAC iteration count rewritten (the MAC then no longer verifies, which the limit must precede). */
export function withMacIterations(der: Buffer, iterations: number): Buffer {
  const pfx = asn1.fromDer(forge.util.createBuffer(der.toString('binary')));
  const macData = (pfx.value as forge.asn1.Asn1[])[2] as forge.asn1.Asn1;
  (macData.value as forge.asn1.Asn1[])[2] = integer(iterations);
  return Buffer.from(asn1.toDer(pfx).getBytes(), 'binary');
}
