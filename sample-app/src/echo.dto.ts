import { IsString, Length } from 'class-validator';

/** Body of the `echo` event: a message of 1 to 1000 characters and nothing else. */
export class EchoDto {
  @IsString()
  @Length(1, 1000)
  message!: string;
}

/** Reply of the `echo` event (never validated: its rules describe it in the contract). */
export class EchoReply {
  @IsString()
  message!: string;
}
