/**
 * How message payloads are validated against a handler's DTO class. Set it in the
 * module options (`validation`), per gateway (`@RealtimeGateway(path, { validation })`)
 * or per handler (`@MessageValidation()`); the most specific level wins field by field,
 * and `false` at any level turns validation off there.
 */
export interface RealtimeValidationOptions {
  /** Strip properties that carry no class-validator decorator. Default true. */
  whitelist?: boolean;
  /** Refuse (instead of strip) properties that carry no decorator. Default true. */
  forbidNonWhitelisted?: boolean;
  /**
   * Hand the handler an instance of its DTO class (defaults, `@Type`, `@Transform`
   * applied). When false it gets the validated plain object. Default true.
   */
  transform?: boolean;
  /** Validation groups to apply, as in class-validator. Default: none (ungrouped rules). */
  groups?: string[];
  /** When no `groups` are given, skip the rules that belong to a group. Default false. */
  strictGroups?: boolean;
  /** Skip rules of properties that are `null` or `undefined`. Default false. */
  skipMissingProperties?: boolean;
  /** Report only the first failed rule of each property. Default false. */
  stopAtFirstError?: boolean;
}

/** Validation settings at one level: options, or `false` to turn validation off. */
export type RealtimeValidationSetting = RealtimeValidationOptions | false;
