// The console's entry: sign-in, the staff check, and a router on the URL fragment (#/orders/<id>).
import { gql } from "./api.js";
import { announce, errorText, field, h } from "./dom.js";
import { signIn, signOut, takeTokenFromFragment, token } from "./session.js";
import * as orders from "./pages/orders.js";
import * as order from "./pages/order.js";
import * as disputes from "./pages/disputes.js";
import * as dispute from "./pages/dispute.js";
import * as analytics from "./pages/analytics.js";
import * as webhooks from "./pages/webhooks.js";
import * as subscriptions from "./pages/subscriptions.js";
import * as gateways from "./pages/gateways.js";

const ROUTES = [
  [/^#\/orders\/([^/]+)$/, order],
  [/^#\/orders$/, orders],
  [/^#\/disputes\/([^/]+)$/, dispute],
  [/^#\/disputes$/, disputes],
  [/^#\/analytics$/, analytics],
  [/^#\/webhooks$/, webhooks],
  [/^#\/subscriptions$/, subscriptions],
  [/^#\/gateways$/, gateways],
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");

// Staff only: a staff-only query answers FORBIDDEN for anyone else, so a shopper's token is refused here
// as it would be by every field the console uses.
async function isStaff() {
  try {
    await gql("query { disputes(first: 1) { id } }");
    return true;
  } catch (error) {
    if (error.code === "FORBIDDEN" || error.code === "UNAUTHENTICATED") return false;
    throw error;
  }
}

function signInPage(problem) {
  nav.hidden = true;
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, "aria-describedby": "token-help" });
  const form = h(
    "form",
    { class: "stack", "aria-labelledby": "sign-in-title" },
    field("Staff token (JWT)", input),
    h("p", { id: "token-help" }, "Paste a staff token. In development, `payql token --sub me --admin --link` prints a link that signs in."),
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    signIn(input.value);
    location.hash = "#/orders";
    await route();
  });
  main.replaceChildren(h("h1", { id: "sign-in-title" }, "Sign in"), problem ? errorText(problem) : "", form);
  input.focus();
}

// Each navigation gets a number; a page whose navigation was overtaken (a slow answer after the
// staff member moved on) must not replace the newer page.
let navigation = 0;

async function route() {
  const current = ++navigation;
  if (!token()) return signInPage();
  let staff;
  try {
    staff = await isStaff();
  } catch (error) {
    return signInPage(error);
  }
  if (!staff) {
    signOut();
    return signInPage(new Error("This console is for staff only: that token is not a staff token."));
  }
  nav.hidden = false;
  const hash = location.hash || "#/orders";
  for (const link of nav.querySelectorAll("a")) {
    link.toggleAttribute("aria-current", hash.startsWith(link.getAttribute("href")));
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  const found = ROUTES.find(([pattern]) => pattern.test(hash));
  if (!found) {
    location.hash = "#/orders";
    return;
  }
  const [pattern, page] = found;
  const params = pattern.exec(hash).slice(1).map(decodeURIComponent);
  if (current !== navigation) return;
  main.replaceChildren(h("p", {}, "Loading…"));
  try {
    await page.render(main, ...params);
  } catch (error) {
    main.replaceChildren(h("h1", {}, "Something went wrong"), errorText(error));
  }
  main.focus();
  announce("");
}

document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  location.hash = "";
  signInPage();
});
window.addEventListener("hashchange", route);
takeTokenFromFragment();
route();
