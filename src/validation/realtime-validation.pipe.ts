import { type ArgumentMetadata, Inject, Injectable, Logger, Optional, type PipeTransform } from '@nestjs/common';
import { instanceToPlain, plainToInstance } from 'class-transformer';
import { validate, type ValidationError, type ValidatorOptions } from 'class-validator';
import { REALTIME_MODULE_OPTIONS } from '../realtime.module-definition.js';
import type { RealtimeModuleOptions } from '../realtime-options.interface.js';
import { type DtoPlan, planFor } from './dto-plan.js';
import { SyncValidator } from './sync-validator.js';
import type { RealtimeValidationOptions, RealtimeValidationSetting } from './validation-options.interface.js';
import { toValidationDetails, validationFailed } from './validation-details.js';

const DEFAULTS: Required<Omit<RealtimeValidationOptions, 'groups'>> & Pick<RealtimeValidationOptions, 'groups'> = {
  whitelist: true,
  forbidNonWhitelisted: true,
  transform: true,
  strictGroups: false,
  skipMissingProperties: false,
  stopAtFirstError: false,
};

/** The validation settings in force for one handler: defaults, then module, gateway and handler levels. */
export function resolveValidation(layers: readonly (RealtimeValidationSetting | undefined)[]): RealtimeValidationOptions | false {
  let resolved = DEFAULTS as RealtimeValidationOptions | false;
  for (const layer of layers) {
    if (layer === undefined) {
      continue;
    }
    if (layer === false) {
      resolved = false;
    } else if (typeof layer !== 'object' || layer === null || Array.isArray(layer)) {
      throw new TypeError(`Realtime validation settings are an options object or false, got ${JSON.stringify(layer)}`);
    } else {
      resolved = { ...(resolved === false ? DEFAULTS : resolved), ...withoutUndefined(layer) };
    }
  }
  return resolved;
}

/**
 * The pipe behind the built-in validation of `@MessageBody()` DTOs: `@RealtimeGateway`
 * applies it to every handler. It validates with class-validator's own semantics, but
 * works out once per DTO class what the validation needs, so that a DTO without
 * class-transformer metadata skips the transformer and a DTO without asynchronous rules
 * is validated synchronously. Failures throw `VALIDATION_FAILED` with the details of
 * protocol §2; the gateway's filter answers them with the request id.
 */
@Injectable()
export class RealtimeValidationPipe implements PipeTransform<unknown, unknown> {
  /** Gateway- and handler-level settings, in that order; set by subclasses `@RealtimeGateway` makes. */
  static readonly layers: readonly RealtimeValidationSetting[] = [];

  private static readonly logger = new Logger('RealtimeValidation');
  private static readonly warned = new WeakSet<Function>();

  private readonly transformResult: boolean;
  private readonly validatorOptions: ValidatorOptions | undefined;
  private readonly syncValidator: SyncValidator | undefined;

  constructor(@Optional() @Inject(REALTIME_MODULE_OPTIONS) moduleOptions?: RealtimeModuleOptions) {
    const layers = (new.target as typeof RealtimeValidationPipe).layers;
    const settings = resolveValidation([moduleOptions?.validation, ...layers]);
    this.transformResult = settings !== false && settings.transform !== false;
    this.validatorOptions =
      settings === false
        ? undefined
        : {
            whitelist: settings.whitelist,
            forbidNonWhitelisted: settings.forbidNonWhitelisted,
            groups: settings.groups,
            strictGroups: settings.strictGroups,
            skipMissingProperties: settings.skipMissingProperties,
            stopAtFirstError: settings.stopAtFirstError,
            forbidUnknownValues: true,
            validationError: { target: false, value: false },
          };
    this.syncValidator = this.validatorOptions && new SyncValidator(this.validatorOptions);
  }

  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type !== 'body' || !this.validatorOptions) {
      return value;
    }
    const plan = planFor(metadata.metatype);
    if (!plan) {
      return value;
    }
    if (!isRecord(value) && !(value instanceof plan.type)) {
      throw validationFailed([], `validation failed: data must be a JSON object (${plan.type.name})`);
    }
    if (plan.undecorated) {
      this.warnUndecorated(plan);
    }
    const instance = this.instantiate(plan, value);
    if (plan.async) {
      return validate(instance, this.validatorOptions).then((errors) => this.settle(instance, errors));
    }
    return this.settle(instance, this.syncValidator!.validate(instance));
  }

  private instantiate(plan: DtoPlan, value: object): object {
    if (value instanceof plan.type) {
      return value;
    }
    if (plan.needsTransformer) {
      return plainToInstance(plan.type, value);
    }
    // The payload was parsed from this frame and belongs to no one else: make it the instance.
    return Object.setPrototypeOf(value, plan.type.prototype) as object;
  }

  private settle(instance: object, errors: ValidationError[]): unknown {
    if (errors.length > 0) {
      throw validationFailed(toValidationDetails(errors));
    }
    return this.transformResult ? instance : instanceToPlain(instance);
  }

  private warnUndecorated(plan: DtoPlan): void {
    if (!RealtimeValidationPipe.warned.has(plan.type)) {
      RealtimeValidationPipe.warned.add(plan.type);
      RealtimeValidationPipe.logger.warn(
        `${plan.type.name} has no class-validator decorators, so every payload for it fails validation; ` +
          'decorate its properties, or type the parameter with an interface to take the data unchecked',
      );
    }
  }
}

function withoutUndefined(options: RealtimeValidationOptions): RealtimeValidationOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

/**
 * Whether `value` is an object of keys and values (a JSON object, a MessagePack map), not
 * an array, bytes (MessagePack `bin`), a date (its timestamp extension) or another class's
 * instance, none of which may become the DTO.
 */
function isRecord(value: unknown): value is object {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
