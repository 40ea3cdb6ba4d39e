import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_DETAILS, validationFailed } from '../src/validation/validation-details.js';
import type { ValidationErrorDetail } from '../src/protocol/envelope.js';

/** A failing property with one rule. */
const leaf = (property: string): ValidationErrorDetail => ({ property, constraints: { isString: `${property} must be a string` } });

/** Every entry, nested ones included, depth first. */
function entries(details: readonly ValidationErrorDetail[]): ValidationErrorDetail[] {
  return details.flatMap((detail) => [detail, ...entries(detail.children ?? [])]);
}

describe('the details of a VALIDATION_FAILED error', () => {
  it('keeps every detail, as given, while they fit', () => {
    const details = [leaf('name'), { property: 'address', children: [leaf('city')] }];
    assert.equal(validationFailed(details).details, details);
  });

  it(`keeps the first ${MAX_DETAILS} entries depth first, counting the rest in the message`, () => {
    const details = [{ property: 'items', children: Array.from({ length: 60 }, (_, i) => leaf(String(i))) }, leaf('z')];
    const error = validationFailed(details);
    const kept = error.details as ValidationErrorDetail[];
    assert.equal(entries(kept).length, MAX_DETAILS);
    assert.deepEqual(
      kept.map((detail) => detail.property),
      ['items'],
    );
    assert.match(error.message, /\(and 58 more\)$/);
  });

  it('drops an entry whose nested failures were all cut and that has none of its own: every entry names a failure', () => {
    const details = [
      ...Array.from({ length: MAX_DETAILS - 1 }, (_, i) => leaf(`p${i}`)),
      { property: 'address', children: [leaf('city')] },
    ];
    const kept = validationFailed(details).details as ValidationErrorDetail[];
    assert.equal(kept.length, MAX_DETAILS - 1);
    for (const detail of entries(kept)) {
      assert.ok(detail.constraints || (detail.children?.length ?? 0) > 0, JSON.stringify(detail));
    }
  });
});
