import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CliError } from './errors.js';
import { capture } from './test-io.js';
import { main, runEntry } from './main.js';
import { COMMANDS, allCommands } from './registry.js';
import { defineCommand, spellings, type Command } from './spec.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function everyCommand(): Promise<Command[]> {
  return allCommands(Object.values(COMMANDS));
}

describe('every command', () => {
  it('answers --help with its usage and every option its parser accepts, exit 0', async () => {
    const commands = await everyCommand();
    assert.ok(commands.length >= 20, `only ${commands.length} commands`);
    for (const command of commands) {
      const io = capture();
      assert.equal(await command.run(['--help'], io), 0, command.spec.name);
      assert.ok(io.stdout.startsWith(`Usage: veil ${command.spec.name}`), io.stdout);
      for (const spelling of spellings(command.spec))
        assert.match(io.stdout, new RegExp(`(^|[\\s,])${spelling}[\\s.,]`), `${command.spec.name} ${spelling}`);
      // The same words through main(): the dispatcher reaches every command.
      const viaMain = capture();
      assert.equal(await main([...command.spec.name.split(' '), '--help'], viaMain), 0, command.spec.name);
      assert.equal(viaMain.stdout, io.stdout);
    }
  });

  it('answers -h with its help, except where -h means something else (apply: --helm-template)', async () => {
    for (const command of await everyCommand()) {
      const clash = Object.values(command.spec.options).some((o) => o.short === 'h');
      const io = capture();
      if (clash) {
        await assert.rejects(command.run(['-h'], io), /option '-h, --helm-template' needs a value|'-h'/);
        continue;
      }
      assert.equal(await command.run(['-h'], io), 0, command.spec.name);
      assert.match(io.stdout, /^Usage: /);
    }
  });

  it('names itself in an unknown option or a wrong value: CLI_USAGE, exit 2', async () => {
    for (const command of await everyCommand()) {
      const name = command.spec.name;
      await assert.rejects(command.run(['--no-such-option'], capture()), (err: unknown) => {
        assert.ok(err instanceof CliError);
        assert.equal(err.code, 'CLI_USAGE');
        assert.equal(err.message, `veil ${name}: unknown option '--no-such-option' — run 'veil ${name} --help'`);
        return true;
      });
      const io = capture();
      assert.equal(await main([...name.split(' '), '--no-such-option'], io), 2);
      assert.ok(io.stderr.startsWith(`veil ${name}: unknown option`), io.stderr);
    }
    const io = capture();
    assert.equal(await main(['cas', 'chart', '--image'], io), 2);
    assert.match(io.stderr, /^veil cas chart: option '--image' needs a value — run 'veil cas chart --help'/);
  });

  it('prefixes usage errors thrown inside a command with its name', async () => {
    const io = capture();
    assert.equal(await main(['cas', 'chart'], io), 2);
    assert.match(io.stderr, /^veil cas chart: --image is required/);
  });

  it('lists the subcommands of a group, and names the group for an unknown one', async () => {
    const help = capture();
    assert.equal(await main(['session', '--help'], help), 0);
    for (const sub of ['create', 'update', 'read', 'verify', 'check', 'calculate-hash'])
      assert.match(help.stdout, new RegExp(`veil session ${sub} `));
    const bad = capture();
    assert.equal(await main(['cas', 'frobnicate'], bad), 2);
    assert.match(bad.stderr, /^veil cas: unknown command 'frobnicate' — run 'veil cas --help'/);
  });
});

describe('veil apply -f X --help', () => {
  const service = join(ROOT, 'examples', 'flask-redis', 'flask', 'service.yaml');
  const mesh = join(ROOT, 'examples', 'flask-redis', 'mesh.yaml');

  it("prints the options of that manifest's kind", async () => {
    const s = capture();
    assert.equal(await main(['apply', '-f', service, '--help'], s), 0);
    assert.match(s.stdout, /--no-push/);
    assert.doesNotMatch(s.stdout, /--release|--policy-namespace|^ {2}--no-pull/m);
    const m = capture();
    assert.equal(await main(['apply', '-f', mesh, '--help'], m), 0);
    assert.match(m.stdout, /--release R/);
    assert.doesNotMatch(m.stdout, /^ {2}--no-push|^ {2}--no-image/m);
  });

  it("refuses an option of the other kind, and SCONE's options Veil lacks, by name", async () => {
    const io = capture();
    assert.equal(await main(['apply', '-f', service, '--release', 'r'], io), 2);
    assert.match(io.stderr, /--release applies to kind: mesh manifests/);
    const helm = capture();
    assert.equal(await main(['apply', '-f', mesh, '-h', 'templates/'], helm), 2);
    assert.match(helm.stderr, /--helm-template is not supported by Veil/);
  });
});

describe('a nested group (veil session sign …)', () => {
  const leaf = (name: string) =>
    defineCommand({ name, usage: ['FILE'], summary: name, options: {}, positionals: true }, ({ positionals }, io) => {
      io.out(`${name}:${positionals.join(',')}`);
      return 0;
    });
  const group = {
    summary: 'signatures',
    default: async () => leaf('session sign'),
    subcommands: { 'add-signature': async () => leaf('session sign add-signature') },
  };

  it('runs the named subcommand, else the default with every word', async () => {
    const named = capture();
    assert.equal(await runEntry('session sign', group, ['add-signature', 'f.yml'], named), 0);
    assert.equal(named.stdout, 'session sign add-signature:f.yml');
    const fallback = capture();
    assert.equal(await runEntry('session sign', group, ['f.yml'], fallback), 0);
    assert.equal(fallback.stdout, 'session sign:f.yml');
    const help = capture();
    assert.equal(await runEntry('session sign', group, ['--help'], help), 0);
    assert.match(help.stdout, /veil session sign FILE\n[\s\S]*veil session sign add-signature FILE/);
  });
});
