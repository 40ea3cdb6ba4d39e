// class-transformer exports its metadata storage only from this deep path, without typings of its own.
declare module 'class-transformer/cjs/storage.js' {
  export { defaultMetadataStorage } from 'class-transformer/types/storage.js';
}

// class-validator's validation executor, which its own validateSync() uses; typings from its types/ tree.
declare module 'class-validator/cjs/validation/ValidationExecutor.js' {
  export { ValidationExecutor } from 'class-validator/types/validation/ValidationExecutor.js';
}
