import { loadIdentity, veilHome } from '../home.js';
import { defineCommand } from '../spec.js';

export const show = defineCommand(
  { name: 'self show', usage: [''], summary: "this CLI's identity: its key hash and certificate", options: {} },
  (_, io) => {
    const identity = loadIdentity(veilHome(io.env));
    io.out(`key hash: ${identity.keyHash}\n${identity.certPem}`);
    return 0;
  },
);

export const showKeyHash = defineCommand(
  {
    name: 'self show-key-hash',
    usage: [''],
    summary: "the key hash of this CLI's identity (what a session's CREATOR is)",
    options: {},
  },
  (_, io) => {
    io.out(`${loadIdentity(veilHome(io.env)).keyHash}\n`);
    return 0;
  },
);

export const showCertificate = defineCommand(
  { name: 'self show-certificate', usage: [''], summary: "the certificate of this CLI's identity", options: {} },
  (_, io) => {
    io.out(loadIdentity(veilHome(io.env)).certPem);
    return 0;
  },
);
