// planrun-demo: a tiny chat client for the demo backend.
"use strict";

function connectChat(sessionId, onMessage) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${window.location.host}/ws/chat/session/${encodeURIComponent(sessionId)}/`;
  const socket = new WebSocket(url);
  socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
  return {
    send(message) {
      socket.send(JSON.stringify({ type: "chat_message", message }));
    },
    close() {
      socket.close();
    },
  };
}

window.planrunDemo = { connectChat };
