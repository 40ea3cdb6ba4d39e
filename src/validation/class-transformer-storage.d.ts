// class-transformer exports its metadata storage only from this deep path, without typings of its own.
declare module 'class-transformer/cjs/storage.js' {
  export { defaultMetadataStorage } from 'class-transformer/types/storage.js';
}
