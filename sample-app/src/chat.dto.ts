import { Type } from 'class-transformer';
import { IsArray, IsBoolean, IsInt, IsISO8601, IsOptional, IsString, Length, Matches, Min, ValidateNested } from 'class-validator';

/** Room names: 1 to 128 characters of `[A-Za-z0-9_.:-]` (protocol §6). */
export const ROOM_NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Body of `join` and `leave`. */
export class RoomDto {
  @IsString()
  @Matches(ROOM_NAME_PATTERN, { message: 'room must be 1 to 128 characters of A-Z, a-z, 0-9, _ . : -' })
  room!: string;
}

/** Where a client left off in a room: the last offset it got, and the room's epoch (docs/protocol.md §7). */
export class SinceDto {
  @IsInt()
  @Min(0)
  offset!: number;

  @IsString()
  @Length(1, 64)
  epoch!: string;
}

/** Body of `join`: a room, and where the client left off when it comes back. */
export class JoinDto extends RoomDto {
  @IsOptional()
  @ValidateNested()
  @Type(() => SinceDto)
  since?: SinceDto;
}

/** Body of `send`: a room and a text of 1 to 2000 characters. */
export class SendDto extends RoomDto {
  @IsString()
  @Length(1, 2000)
  text!: string;
}

// Replies and pushes: never validated (the server makes them); their rules describe them in
// the contract (GET /asyncapi.json) for client authors and generated types.

/** The reply to `join`: the room's members on every instance, and its position. */
export class JoinReply extends RoomDto {
  @IsArray()
  @IsString({ each: true })
  members!: string[];

  @IsOptional()
  @IsInt()
  @Min(0)
  offset?: number;

  @IsOptional()
  @IsString()
  epoch?: string;

  /** Set when the join asked to recover (`since`): whether every missed message follows. */
  @IsOptional()
  @IsBoolean()
  recovered?: boolean;
}

/** The reply to `send`: when the server took the message, and its offset in the room. */
export class SendReply extends RoomDto {
  @IsISO8601()
  at!: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  offset?: number;
}

/** What every member of a room receives for each `send`, under the event `message`. */
export class ChatMessage extends SendDto {
  @IsString()
  from!: string;

  @IsISO8601()
  at!: string;
}
