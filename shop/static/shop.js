// The demo shop: catalog and cart, checkout with a tokenized card, 3-D Secure on the sandbox's page,
// a subscription sign-up, statuses arriving live, and the shopper's orders and subscriptions. Short on
// purpose: copy it.
import { gql, signIn, takeTokenFromFragment, token, tokenizeCard } from "./api.js";
import { watchOrder, watchSubscription } from "./live.js";

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

// One idempotency key per purchase (the cart, a plan): paying again after a lost answer cannot
// charge twice. `done` forgets it once PayQL has answered.
function keyFor(purchase) {
  const key = sessionStorage.getItem(`payql.shop.key.${purchase}`) || crypto.randomUUID();
  sessionStorage.setItem(`payql.shop.key.${purchase}`, key);
  return key;
}

function done(purchase, id, nextAction) {
  sessionStorage.removeItem(`payql.shop.key.${purchase}`);
  sessionStorage.setItem(`payql.shop.action.${id}`, nextAction ? nextAction.redirectUrl || "" : "");
}

const price = (p) => `${p.unitAmount.decimal} ${p.unitAmount.currency}${p.recurringInterval ? ` a ${p.recurringInterval.toLowerCase()}` : ""}`;

async function catalog() {
  const { products } = await gql("query { products { id name description prices { id type recurringInterval metered unitAmount { decimal currency } } } }");
  const buy = (p, each) => h("button", { type: "button", "aria-label": `Add ${p.name} at ${price(each)} to the cart`, onclick: () => {
    cart.set(each.id, { name: `${p.name} (${price(each)})`, quantity: (cart.get(each.id)?.quantity || 0) + 1 });
    saveCart();
    location.hash = "#/cart";
  } }, "Add to cart");
  const subscribe = (p, plan) => h("button", { type: "button", "aria-label": `Subscribe to ${p.name} at ${price(plan)}`, onclick: () => {
    sessionStorage.setItem("payql.shop.plan", JSON.stringify({ id: plan.id, name: p.name, price: price(plan) }));
    location.hash = "#/subscribe";
  } }, "Subscribe");
  // One-time prices go to the cart; plans billed a fixed amount each period are subscribed to.
  // Metered plans are billed on reported usage, so the shop does not sell them.
  const items = products.map((p) => [p, p.prices.filter((each) => !each.metered)]).filter(([, prices]) => prices.length)
    .map(([p, prices]) => h("li", {}, h("h2", {}, p.name), h("p", {}, p.description),
      h("ul", { class: "prices" }, prices.map((each) =>
        h("li", {}, h("span", {}, price(each)), each.type === "ONE_TIME" ? buy(p, each) : subscribe(p, each))))));
  main.replaceChildren(h("h1", {}, "Catalog"), h("ul", { class: "products" }, items));
}

// The card form: the card goes to the sandbox's tokenization page, and `pay` gets only the token.
function cardForm(label, pay) {
  const number = h("input", { id: "card-number", inputmode: "numeric", autocomplete: "cc-number", required: true });
  const month = h("input", { id: "card-month", inputmode: "numeric", autocomplete: "cc-exp-month", required: true, value: "12" });
  const year = h("input", { id: "card-year", inputmode: "numeric", autocomplete: "cc-exp-year", required: true, value: "2030" });
  const cvc = h("input", { id: "card-cvc", inputmode: "numeric", autocomplete: "cc-csc", required: true });
  const problem = h("p", { class: "error", role: "alert" });
  const form = h("form", { "aria-label": label },
    h("label", {}, "Card number", number), h("label", {}, "Expiry month", month), h("label", {}, "Expiry year", year),
    h("label", {}, "CVC", cvc), h("button", { type: "submit" }, label), problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    try {
      await pay(await tokenizeCard(number.value, month.value, year.value, cvc.value));
    } catch (error) {
      problem.textContent = error.message;
    }
  });
  return form;
}

function cartPage() {
  if (!cart.size) return main.replaceChildren(h("h1", {}, "Cart"), h("p", {}, "Your cart is empty."));
  const form = cardForm("Pay", async (paymentMethod) => {
    const items = [...cart].map(([priceId, line]) => ({ priceId, quantity: line.quantity }));
    const { checkout } = await gql(
      `mutation($input: CheckoutInput!) { checkout(input: $input) {
        order { id } payment { id status } nextAction { type redirectUrl } userErrors { message } } }`,
      { input: { items, gateway: "sandbox", paymentMethod, idempotencyKey: keyFor("cart") } });
    if (checkout.userErrors.length) throw new Error(checkout.userErrors.map((e) => e.message).join(" "));
    cart.clear();
    saveCart();
    done("cart", checkout.order.id, checkout.nextAction);
    location.hash = `#/orders/${checkout.order.id}`;
  });
  main.replaceChildren(h("h1", {}, "Cart"),
    h("ul", {}, [...cart.values()].map((line) => h("li", {}, `${line.quantity} × ${line.name}`))),
    h("h2", {}, "Pay by card"), form);
}

function subscribePage() {
  const plan = JSON.parse(sessionStorage.getItem("payql.shop.plan") || "null");
  if (!plan) return main.replaceChildren(h("h1", {}, "Subscribe"), h("p", {}, "Choose a plan in the catalog."));
  const form = cardForm("Subscribe", async (paymentMethod) => {
    const { createSubscription: created } = await gql(
      `mutation($input: CreateSubscriptionInput!) { createSubscription(input: $input) {
        subscription { id status } nextAction { type redirectUrl } userErrors { message } } }`,
      { input: { priceId: plan.id, gateway: "sandbox", paymentMethod, idempotencyKey: keyFor(plan.id) } });
    if (created.userErrors.length) throw new Error(created.userErrors.map((e) => e.message).join(" "));
    done(plan.id, created.subscription.id, created.nextAction);
    location.hash = `#/subscriptions/${created.subscription.id}`;
  });
  main.replaceChildren(h("h1", {}, `Subscribe to ${plan.name}`), h("p", {}, plan.price), h("h2", {}, "Pay by card"), form);
}

// An order's or a subscription's page: its status arrives live. When the bank asks for 3-D Secure,
// its page opens beside the shop and this page hears the outcome.
function livePage(heading, id, statusId, watch, waiting) {
  const status = h("p", { id: statusId, class: "status", role: "status", "aria-live": "polite" }, "…");
  const redirect = sessionStorage.getItem(`payql.shop.action.${id}`);
  const authenticate = redirect ? h("p", {}, h("a", { href: redirect, target: "_blank", rel: "noopener" }, "Confirm the payment with your bank (3-D Secure)")) : null;
  main.replaceChildren(h("h1", {}, heading), h("p", {}, h("code", {}, id)), status, authenticate || "");
  stopWatching = watch(id, (current) => {
    status.textContent = current.status;
    if (current.status !== waiting && authenticate) authenticate.remove();
  });
}

async function myOrders() {
  const { orders, subscriptions } = await gql(`query {
    orders(first: 20) { edges { node { id status total { decimal currency } createdAt } } }
    subscriptions(first: 20) { id status price { unitAmount { decimal currency } recurringInterval } } }`);
  main.replaceChildren(h("h1", {}, "My orders and subscriptions"), h("h2", {}, "Orders"), h("ul", { id: "my-orders" }, orders.edges.map(({ node }) =>
    h("li", {}, h("a", { href: `#/orders/${node.id}` }, node.id), ` ${node.status} ${node.total.decimal} ${node.total.currency}`))),
  h("h2", {}, "Subscriptions"), h("ul", { id: "my-subscriptions" }, subscriptions.map((s) =>
    h("li", {}, h("a", { href: `#/subscriptions/${s.id}` }, s.id), ` ${s.status} ${price(s.price)}`))));
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
  const [, kind, id] = /^#\/(orders|subscriptions)\/([^/]+)$/.exec(hash) || [];
  if (kind === "orders") livePage("Your order", decodeURIComponent(id), "order-status", watchOrder, "REQUIRES_ACTION");
  else if (kind === "subscriptions") livePage("Your subscription", decodeURIComponent(id), "subscription-status", watchSubscription, "INCOMPLETE");
  else if (hash === "#/cart") cartPage();
  else if (hash === "#/subscribe") subscribePage();
  else if (hash === "#/orders") await myOrders();
  else await catalog();
  main.focus();
}

window.addEventListener("hashchange", route);
takeTokenFromFragment();
route();
