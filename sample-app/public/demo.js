// The demo page's script: plain JavaScript on the client SDK, served as ES modules.
import { RealtimeClient } from '/sdk/client/bundle.js';

const $ = (id) => document.getElementById(id);
/** The latest state changes shown, oldest first. */
const HISTORY_SHOWN = 12;
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

/** A state in words: what the user sees, and what happens next. */
function describeState({ state, close, retryInMs }) {
  const seconds = retryInMs === undefined ? '' : ` — retrying in ${Math.max(1, Math.round(retryInMs / 1000))} s`;
  switch (state) {
    case 'connecting':
      return 'connecting…';
    case 'open':
      return 'connected';
    case 'reconnecting':
      return !close || close.code === 1006
        ? `server unreachable${seconds}`
        : `the server closed the connection (${close.code}${close.reason ? ` ${close.reason}` : ''})${seconds}`;
    default:
      return close ? `disconnected (${close.code}${close.reason ? ` ${close.reason}` : ''})` : 'disconnected';
  }
}

/** Shows a client's state, now and at each change. */
function watchState(client, name, element, buttons) {
  const show = (change) => {
    element.textContent = describeState(change);
    element.dataset.state = change.state;
    history.push(`${name}:${change.state}`);
    history.splice(0, history.length - HISTORY_SHOWN);
    $('state-history').textContent = history.join(' ');
    for (const button of buttons) button.disabled = change.state !== 'open';
  };
  client.onState(show);
  // Registered late (after the first change), it shows where the client stands now.
  if (client.state !== 'closed') show({ state: client.state });
}

async function login(username) {
  let response;
  try {
    response = await fetch('/auth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username }),
    });
  } catch {
    throw new Error('server unreachable');
  }
  if (!response.ok) throw new Error(`login failed: ${response.status}`);
  return (await response.json()).access_token;
}

$('login').addEventListener('click', async () => {
  const username = $('username').value.trim();
  echo?.disconnect();
  chat?.disconnect();
  let token;
  try {
    token = await login(username);
  } catch (error) {
    $('whoami').textContent = `not logged in: ${error.message}`;
    return;
  }
  $('whoami').textContent = `logged in as ${username}`;
  // The SDK asks again on 4001, after a refused handshake and before expiry: log in again then.
  const tokens = async (reason) => (reason === 'expired' || reason === 'refresh' ? (token = await login(username)) : token);
  const base = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;

  echo = new RealtimeClient(`${base}/echo`, { token: tokens });
  watchState(echo, 'echo', $('state-echo'), [$('echo-send')]);

  // Rooms joined with chat.join() are joined again after a reconnection, with what was missed.
  chat = new RealtimeClient(`${base}/chat`, { token: tokens });
  watchState(chat, 'chat', $('state-chat'), [$('join'), $('chat-send')]);
  chat.on('message', (data) => line($('chat-log'), `[${data.room}] ${data.from}: ${data.text}`));
  chat.onRejoin(({ room, recovered }) =>
    line(
      $('chat-log'),
      recovered ? `[${room}] back: every missed message recovered` : `[${room}] back: some messages could not be recovered`,
      recovered ? 'notice' : 'notice error',
    ),
  );
  // Connection trouble shows in the state line (retrying in …); the log keeps the server's errors.
  chat.onError((error) => error.code !== 'DISCONNECTED' && line($('chat-log'), `${error.code}: ${error.message}`, 'error'));
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
