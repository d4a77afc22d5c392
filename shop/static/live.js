// Live status over PayQL's websocket (graphql-transport-ws): an order's (`orderStatus`) and a
// subscription's (`subscriptionStatus`). The token goes in connection_init: browsers cannot set
// headers on a websocket.
import { token } from "./api.js";

function watch(query, variables, onData) {
  const socket = new WebSocket(`${location.origin.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
  socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token()}` } })));
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "connection_ack") {
      socket.send(JSON.stringify({ id: "live", type: "subscribe", payload: { query, variables } }));
    } else if (message.type === "next" && message.payload.data) {
      onData(message.payload.data);
    } else if (message.type === "complete" || message.type === "error") {
      socket.close();
    }
  });
  return () => socket.close();
}

export function watchOrder(orderId, onOrder) {
  return watch("subscription($id: ID!) { orderStatus(orderId: $id) { id status total { decimal currency } } }",
    { id: orderId }, (data) => onOrder(data.orderStatus));
}

export function watchSubscription(subscriptionId, onSubscription) {
  return watch("subscription($id: ID!) { subscriptionStatus(subscriptionId: $id) { id status currentPeriodEnd } }",
    { id: subscriptionId }, (data) => onSubscription(data.subscriptionStatus));
}
