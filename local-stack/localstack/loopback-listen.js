// Preloaded (NODE_OPTIONS=--require) into the Node.js servers LocalStack
// starts (kinesis-local, its DynamoDB Streams backend): they listen on every
// interface and have no setting for it, so every listen is pinned to
// 127.0.0.1, the only address LocalStack itself talks to them on.
"use strict";
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || typeof args[0] === "string" && /^\d+$/.test(args[0])) {
    const port = args[0];
    const callback = args.find((arg) => typeof arg === "function");
    return listen.call(this, { port: Number(port), host: "127.0.0.1" }, callback);
  }
  if (args[0] && typeof args[0] === "object" && "port" in args[0]) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
