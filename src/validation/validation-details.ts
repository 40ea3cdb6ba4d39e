import type { ValidationError } from 'class-validator';
import { ErrorCode } from '../protocol/error-codes.js';
import type { ValidationErrorDetail } from '../protocol/envelope.js';
import { RealtimeError } from '../realtime.errors.js';

/** How many failed rules the error frame's message names before it says "and N more". */
const MESSAGE_RULES = 3;
/**
 * How many entries (nested ones included) the error frame's details hold at most: a 64 KiB
 * frame of unknown keys fails thousands of whitelist rules, and a detail for each would
 * make the answer ten times the question.
 */
export const MAX_DETAILS = 50;

/**
 * class-validator's errors as protocol details: `{property, constraints?, children?}`,
 * nested as the DTO is. Values and targets are left out: the client sent them.
 */
export function toValidationDetails(errors: readonly ValidationError[]): ValidationErrorDetail[] {
  return errors.map((error) => {
    const detail: ValidationErrorDetail = { property: error.property };
    if (error.constraints && Object.keys(error.constraints).length > 0) {
      detail.constraints = { ...error.constraints };
    }
    if (error.children && error.children.length > 0) {
      detail.children = toValidationDetails(error.children);
    }
    return detail;
  });
}

/** A one-line summary naming the first failed rules with their paths, e.g. `items.1.name: name must be a string`. */
export function summarize(details: readonly ValidationErrorDetail[]): string {
  const messages: string[] = [];
  const visit = (list: readonly ValidationErrorDetail[], prefix: string): void => {
    for (const detail of list) {
      const path = prefix ? `${prefix}.${detail.property}` : detail.property;
      for (const message of Object.values(detail.constraints ?? {})) {
        messages.push(path ? `${path}: ${message}` : message);
      }
      visit(detail.children ?? [], path);
    }
  };
  visit(details, '');
  if (messages.length === 0) {
    return 'validation failed';
  }
  const shown = messages.slice(0, MESSAGE_RULES).join('; ');
  const more = messages.length - MESSAGE_RULES;
  return `validation failed: ${shown}${more > 0 ? ` (and ${more} more)` : ''}`;
}

/**
 * The `VALIDATION_FAILED` error for a list of class-validator errors. It carries no stack:
 * it is the client's fault, and capturing one would cost more than the validation.
 */
export function validationFailed(details: ValidationErrorDetail[], message = summarize(details)): RealtimeError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new RealtimeError(ErrorCode.VALIDATION_FAILED, message, firstDetails(details, { left: MAX_DETAILS }));
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * An `exceptionFactory` for Nest's own `ValidationPipe`, for gateways that use it instead
 * of the built-in validation: its failures then reach the client as `VALIDATION_FAILED`
 * frames with the same details.
 *
 * @example new ValidationPipe({ exceptionFactory: realtimeValidationExceptionFactory })
 */
export function realtimeValidationExceptionFactory(errors: ValidationError[]): RealtimeError {
  return validationFailed(toValidationDetails(errors));
}

/** The first entries of `details`, depth first, while `budget` lasts (the message counts them all); `details` itself when all fit. */
function firstDetails(details: ValidationErrorDetail[], budget: { left: number }): ValidationErrorDetail[] {
  const kept: ValidationErrorDetail[] = [];
  let cut = false;
  for (const detail of details) {
    if (budget.left <= 0) {
      cut = true;
      break;
    }
    budget.left--;
    const children = detail.children && firstDetails(detail.children, budget);
    if (children === detail.children) {
      kept.push(detail);
    } else {
      cut = true;
      const { property, constraints } = detail;
      if (constraints || children!.length > 0) {
        // An entry whose nested failures were all cut, and that has none of its own, goes too.
        kept.push({ property, ...(constraints && { constraints }), ...(children!.length > 0 && { children }) });
      }
    }
  }
  return cut ? kept : details;
}
