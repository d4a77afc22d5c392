// The demo shop: catalog and cart, checkout with a tokenized card, 3-D Secure on the sandbox's page,
// the order's status arriving live, and the shopper's orders. Short on purpose: copy it.
import { gql, signIn, takeTokenFromFragment, token, tokenizeCard } from "./api.js";
import { watchOrder } from "./live.js";

const main = document.getElementById("main");
const cart = new Map(JSON.parse(sessionStorage.getItem("payql.shop.cart") || "[]"));
let stopWatching = () => {};

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) element.setAttribute(name, String(value));
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined));
  return element;
}

function saveCart() {
  sessionStorage.setItem("payql.shop.cart", JSON.stringify([...cart]));
}

async function catalog() {
  const { products } = await gql("query { products { id name description prices { id type unitAmount { decimal currency } } } }");
  const items = products.flatMap((p) => p.prices.filter((price) => price.type === "ONE_TIME").map((price) =>
    h("li", {}, h("h2", {}, p.name), h("p", {}, p.description), h("p", {}, `${price.unitAmount.decimal} ${price.unitAmount.currency}`),
      h("button", { type: "button", "aria-label": `Add ${p.name} to the cart`, onclick: () => {
        cart.set(price.id, { name: p.name, quantity: (cart.get(price.id)?.quantity || 0) + 1 });
        saveCart();
        location.hash = "#/cart";
      } }, "Add to cart"))));
  main.replaceChildren(h("h1", {}, "Catalog"), h("ul", { class: "products" }, items));
}

function cartPage() {
  if (!cart.size) return main.replaceChildren(h("h1", {}, "Cart"), h("p", {}, "Your cart is empty."));
  const number = h("input", { id: "card-number", inputmode: "numeric", autocomplete: "cc-number", required: true });
  const month = h("input", { id: "card-month", inputmode: "numeric", autocomplete: "cc-exp-month", required: true, value: "12" });
  const year = h("input", { id: "card-year", inputmode: "numeric", autocomplete: "cc-exp-year", required: true, value: "2030" });
  const cvc = h("input", { id: "card-cvc", inputmode: "numeric", autocomplete: "cc-csc", required: true });
  const problem = h("p", { class: "error", role: "alert" });
  // One idempotency key per cart: paying again after a lost answer cannot charge twice.
  const key = sessionStorage.getItem("payql.shop.key") || crypto.randomUUID();
  sessionStorage.setItem("payql.shop.key", key);
  const form = h("form", { "aria-label": "Pay" },
    h("label", {}, "Card number", number), h("label", {}, "Expiry month", month), h("label", {}, "Expiry year", year),
    h("label", {}, "CVC", cvc), h("button", { type: "submit" }, "Pay"), problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    try {
      const paymentMethod = await tokenizeCard(number.value, month.value, year.value, cvc.value);
      const items = [...cart].map(([priceId, line]) => ({ priceId, quantity: line.quantity }));
      const { checkout } = await gql(
        `mutation($input: CheckoutInput!) { checkout(input: $input) {
          order { id } payment { id status } nextAction { type redirectUrl } userErrors { message } } }`,
        { input: { items, gateway: "sandbox", paymentMethod, idempotencyKey: key } });
      if (checkout.userErrors.length) throw new Error(checkout.userErrors.map((e) => e.message).join(" "));
      cart.clear();
      saveCart();
      sessionStorage.removeItem("payql.shop.key");
      sessionStorage.setItem(`payql.shop.action.${checkout.order.id}`, checkout.nextAction ? checkout.nextAction.redirectUrl || "" : "");
      location.hash = `#/orders/${checkout.order.id}`;
    } catch (error) {
      problem.textContent = error.message;
    }
  });
  main.replaceChildren(h("h1", {}, "Cart"),
    h("ul", {}, [...cart.values()].map((line) => h("li", {}, `${line.quantity} × ${line.name}`))),
    h("h2", {}, "Pay by card"), form);
}

function orderPage(orderId) {
  const status = h("p", { id: "order-status", class: "status", role: "status", "aria-live": "polite" }, "…");
  const redirect = sessionStorage.getItem(`payql.shop.action.${orderId}`);
  // 3-D Secure: the bank's page opens beside the shop; this page hears the outcome live.
  const authenticate = redirect ? h("p", {}, h("a", { href: redirect, target: "_blank", rel: "noopener" }, "Confirm the payment with your bank (3-D Secure)")) : null;
  main.replaceChildren(h("h1", {}, "Your order"), h("p", {}, h("code", {}, orderId)), status, authenticate || "");
  stopWatching = watchOrder(orderId, (order) => {
    status.textContent = order.status;
    if (order.status !== "REQUIRES_ACTION" && authenticate) authenticate.remove();
  });
}

async function myOrders() {
  const { orders } = await gql("query { orders(first: 20) { edges { node { id status total { decimal currency } createdAt } } } }");
  main.replaceChildren(h("h1", {}, "My orders"), h("ul", { id: "my-orders" }, orders.edges.map(({ node }) =>
    h("li", {}, h("a", { href: `#/orders/${node.id}` }, node.id), ` ${node.status} ${node.total.decimal} ${node.total.currency}`))));
}

function signInPage() {
  const input = h("input", { id: "token", type: "password", required: true });
  const form = h("form", { "aria-label": "Sign in" }, h("label", {}, "Your token (in development: payql token --sub you)", input), h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    signIn(input.value);
    route();
  });
  main.replaceChildren(h("h1", {}, "Sign in"), form);
}

async function route() {
  stopWatching();
  if (!token()) return signInPage();
  const hash = location.hash || "#/";
  const order = /^#\/orders\/([^/]+)$/.exec(hash);
  if (order) orderPage(decodeURIComponent(order[1]));
  else if (hash === "#/cart") cartPage();
  else if (hash === "#/orders") await myOrders();
  else await catalog();
  main.focus();
}

window.addEventListener("hashchange", route);
takeTokenFromFragment();
route();
