// The demo page's script: plain JavaScript on the client SDK, served as ES modules.
import { RealtimeClient } from '/sdk/client/index.js';

const $ = (id) => document.getElementById(id);
const history = [];
const joined = new Set();
let echo;
let chat;

function line(target, text, className) {
  const div = document.createElement('div');
  div.textContent = text;
  if (className) div.className = className;
  target.append(div);
  target.scrollTop = target.scrollHeight;
}

function showState(name, element, button) {
  return ({ state, close, retryInMs }) => {
    element.textContent = state + (retryInMs !== undefined ? ` (retry in ${retryInMs} ms)` : '') + (close ? ` [${close.code}]` : '');
    element.dataset.state = state;
    history.push(`${name}:${state}`);
    $('state-history').textContent = history.join(' ');
    for (const b of button) b.disabled = state !== 'open';
  };
}

async function login(username) {
  const response = await fetch('/auth/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username }),
  });
  if (!response.ok) throw new Error(`login failed: ${response.status}`);
  return (await response.json()).access_token;
}

$('login').addEventListener('click', async () => {
  const username = $('username').value.trim();
  echo?.disconnect();
  chat?.disconnect();
  let token = await login(username);
  $('whoami').textContent = `logged in as ${username}`;
  // The SDK asks again on 4001, after a refused handshake and before expiry: log in again then.
  const tokens = async (reason) => (reason === 'expired' || reason === 'refresh' ? (token = await login(username)) : token);
  const base = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;

  echo = new RealtimeClient(`${base}/echo`, { token: tokens });
  echo.onState(showState('echo', $('state-echo'), [$('echo-send')]));

  // Rooms joined with chat.join() are joined again after a reconnection, with what was missed.
  chat = new RealtimeClient(`${base}/chat`, { token: tokens });
  chat.onState(showState('chat', $('state-chat'), [$('join'), $('chat-send')]));
  chat.on('message', (data) => line($('chat-log'), `[${data.room}] ${data.from}: ${data.text}`));
  chat.onRejoin(({ room, recovered }) =>
    line(
      $('chat-log'),
      recovered ? `[${room}] back: every missed message recovered` : `[${room}] back: some messages could not be recovered`,
      recovered ? 'notice' : 'notice error',
    ),
  );
  chat.onError((error) => line($('chat-log'), `${error.code}: ${error.message}`, 'error'));
});

$('echo-send').addEventListener('click', async () => {
  try {
    const reply = await echo.request('echo', { message: $('echo-input').value });
    line($('echo-output'), reply.message);
  } catch (error) {
    line($('echo-output'), `${error.code}: ${error.message}`, 'error');
  }
});

$('join').addEventListener('click', async () => {
  const room = $('room').value.trim();
  try {
    const reply = await chat.join(room);
    joined.add(room);
    $('members').textContent = `members: ${reply.members.join(', ')}`;
  } catch (error) {
    line($('chat-log'), `${error.code}: ${error.message}`, 'error');
  }
});

$('chat-send').addEventListener('click', async () => {
  const room = [...joined].at(-1) ?? $('room').value.trim();
  try {
    await chat.request('send', { room, text: $('chat-input').value });
    $('chat-input').value = '';
  } catch (error) {
    line($('chat-log'), `${error.code}: ${error.message}`, 'error');
  }
});
