// The order's status, live, over PayQL's `orderStatus` subscription (graphql-transport-ws). The
// token goes in connection_init: browsers cannot set headers on a websocket.
import { token } from "./api.js";

export function watchOrder(orderId, onOrder) {
  const socket = new WebSocket(`${location.origin.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
  socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token()}` } })));
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "connection_ack") {
      socket.send(JSON.stringify({
        id: "order", type: "subscribe",
        payload: { query: "subscription($id: ID!) { orderStatus(orderId: $id) { id status total { decimal currency } } }", variables: { id: orderId } },
      }));
    } else if (message.type === "next" && message.payload.data) {
      onOrder(message.payload.data.orderStatus);
    } else if (message.type === "complete" || message.type === "error") {
      socket.close();
    }
  });
  return () => socket.close();
}
