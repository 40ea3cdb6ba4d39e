// The realtime contract of "nestjs-realtime sample app" 1.0.0, generated from its AsyncAPI document: do not edit.

export type ChatMessage = {
  from: string;
  at: string;
  room: string;
  text: string;
};

export type EchoDto = {
  message: string;
};

export type EchoReply = {
  message: string;
};

/** A protocol error code, or one of the application's own (`[A-Z][A-Z0-9_]{1,63}`, such as `ROOM_FULL`). */
export type ErrorCode = string;

export type ErrorFrame = {
  event: 'error';
  id?: MessageId;
  data: {
    code: ErrorCode;
    message: string;
    details?: unknown[];
  };
};

export type JoinDto = {
  since?: SinceDto;
  room: string;
};

export type JoinReply = {
  members: Array<string>;
  offset?: number;
  epoch?: string;
  recovered?: boolean;
  room: string;
};

/** A request id: exactly one reply (or error frame) carries it back. */
export type MessageId = string | number;

export type RoomDto = {
  room: string;
};

export type SendDto = {
  text: string;
  room: string;
};

export type SendReply = {
  at: string;
  offset?: number;
  room: string;
};

export type SinceDto = {
  offset: number;
  epoch: string;
};

/** The gateway at `/chat`: its requests (data and reply) and its pushes, for `RealtimeClient<ChatContract>`. */
export type ChatContract = {
  requests: {
    join: {
      data: JoinDto;
      reply: JoinReply;
    };
    leave: {
      data: RoomDto;
      reply: RoomDto;
    };
    send: {
      data: SendDto;
      reply: SendReply;
    };
    ping: {
      data?: unknown;
      reply: {
        t: number;
      };
    };
    auth: {
      data: {
        token: string;
      };
      reply: {
        exp: number | null;
      };
    };
  };
  pushes: {
    message: ChatMessage;
  };
};

/** The gateway at `/echo`: its requests (data and reply) and its pushes, for `RealtimeClient<EchoContract>`. */
export type EchoContract = {
  requests: {
    echo: {
      data: EchoDto;
      reply: EchoReply;
    };
    ping: {
      data?: unknown;
      reply: {
        t: number;
      };
    };
    auth: {
      data: {
        token: string;
      };
      reply: {
        exp: number | null;
      };
    };
  };
  pushes: Record<never, never>;
};
