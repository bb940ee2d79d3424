'use strict';
// The npm @rails/actioncable client (the browser library, run in Node with ws as its WebSocket)
// against cable_server.rb.
// usage: node cable.js client MODE --port P --log FILE
//   MODE session: /cable?user=alice subscribes to EchoChannel (confirmed), speaks once (echoed),
//   subscribes to RejectChannel (rejected), waits for the server's pings, asks EchoChannel to
//   restart the server (disconnect "server_restart", reconnect true: the client stops instead
//   of reconnecting); then /cable without a user is refused (disconnect "unauthorized").
// Application truth (`ev: "app"`): every message the library's Connection handled (its type,
// and for a disconnect the reason), the subscription callbacks, what was performed.

const [role, mode] = process.argv.slice(2, 4);
const A = {};
for (let i = 4; i < process.argv.length; i += 2) A[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (role !== 'client' || mode !== 'session') throw new Error('usage: node cable.js client session ...');
const hook = require('./hook');
const H = hook(role, A.log);
hook.impl = '@rails/actioncable ' + hook.version('@rails/actioncable');
let conn = null;
hook.onOpen = (ws, c) => { conn = c; };
const app = (fields) => H.app(conn, fields);
const port = Number(A.port);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The browser globals the library reads.
global.self = global;
global.WebSocket = require('ws');
global.addEventListener = () => {};
global.removeEventListener = () => {};
global.document = { visibilityState: 'visible' };
const ActionCable = require('@rails/actioncable');

const handled = ActionCable.Connection.prototype.events.message;
ActionCable.Connection.prototype.events.message = function (event) {
  const m = JSON.parse(event.data);
  const fact = { what: 'received', type: m.type || 'message' };
  if (m.identifier) fact.identifier = m.identifier;
  if (m.message !== undefined) fact.message = m.message;
  if (m.reason !== undefined) fact.reason = m.reason;
  if (m.reconnect !== undefined) fact.reconnect = m.reconnect;
  app(fact);
  return handled.call(this, event);
};

async function main() {
  // 1. A session.
  const consumer = ActionCable.createConsumer(`ws://127.0.0.1:${port}/cable?user=alice`);
  let ended;
  const done = new Promise((r) => { ended = r; });
  const echo = consumer.subscriptions.create({ channel: 'EchoChannel', room: 'lobby' }, {
    connected() {
      app({ what: 'subscription_connected', channel: 'EchoChannel' });
      echo.perform('speak', { text: 'hello cable' });
      app({ what: 'performed', channel: 'EchoChannel', action: 'speak', text: 'hello cable' });
    },
    received(data) {
      app({ what: 'subscription_received', channel: 'EchoChannel', data });
      const reject = consumer.subscriptions.create({ channel: 'RejectChannel' }, {
        rejected() { app({ what: 'subscription_rejected', channel: 'RejectChannel' }); },
      });
      app({ what: 'subscribing', channel: 'RejectChannel', identifier: reject.identifier });
      // Past two of the server's 3 s beats, then the restart.
      setTimeout(() => {
        echo.perform('restart', {});
        app({ what: 'performed', channel: 'EchoChannel', action: 'restart' });
      }, 6300);
    },
    disconnected(info) {
      app({ what: 'subscription_disconnected', channel: 'EchoChannel', will_attempt_reconnect: info.willAttemptReconnect });
      consumer.disconnect();
      app({ what: 'consumer_disconnect' });
      ended();
    },
  });
  await done;
  await sleep(400);
  // 2. No user: the connection class refuses it.
  const refused = ActionCable.createConsumer(`ws://127.0.0.1:${port}/cable`);
  refused.connect();
  await sleep(800);
  refused.disconnect();
  await sleep(300);
  process.exit(0);
}

main();
setTimeout(() => process.exit(1), 15000);
