import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PolicyError } from './errors.js';
import { commentRanges } from './template.js';
import { substituteVariables } from './index.js';

describe('session templates ($VAR)', () => {
  it('fill $VAR and {braced}, and leave $$SCONE::x$$ alone', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's ${VAR}, as SCONE writes it
    const out = substituteVariables('name: $S\nx: ${T}-$$SCONE::k$$\n', { S: 'a', T: 'b' });
    assert.equal(out, 'name: a\nx: b-$$SCONE::k$$\n');
  });

  it('a $VAR in a YAML comment is not a variable: neither filled nor required', () => {
    const text = '# upload with -e SESSION=…: $SESSION names it\nname: $SESSION # not $HERE either\n';
    assert.equal(substituteVariables(text, { SESSION: 's' }), text.replace('name: $SESSION', 'name: s'));
  });

  it('# in quoted strings and block scalars is text, and a $VAR there is filled', () => {
    const text = 'a: "#$X"\nb: \'# $X\'\nc: |\n  # $X\nd: x#$X\n';
    assert.equal(substituteVariables(text, { X: '1' }), 'a: "#1"\nb: \'# 1\'\nc: |\n  # 1\nd: x#1\n');
  });

  it('still reports every variable without a value outside comments, with its position', () => {
    assert.throws(
      () => substituteVariables('# $A\nname: $B\nx: [$C, # $D\n  y]\n', {}),
      (e: PolicyError) =>
        e.code === 'POLICY_TEMPLATE_VARIABLE' &&
        e.issues.map((i) => `${i.line}:${i.column} ${i.message}`).join('|') ===
          '2:7 variable $B is not defined|3:5 variable $C is not defined',
    );
  });

  it('finds comments with the YAML lexer, in flow collections and after a BOM too', () => {
    const text = '\ufeff# c\na: [x, # $c\n y]\n--- |\n#x\n';
    assert.deepEqual(
      commentRanges(text).map(([s, e]) => text.slice(s, e)),
      ['# c', '# $c'],
    );
  });
});
