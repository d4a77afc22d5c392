// Subscriptions: status, dunning state (failed attempts, next retry, grace) and the plan, newest first;
// pause, resume and cancel (at the period's end), each confirmed and sent with its intention's key.
import { ApiError, gql } from "../api.js";
import { announce, errorText, h, money, table, when } from "../dom.js";
import { keyFor, settle } from "../intents.js";

const SUBSCRIPTIONS = `query { subscriptions(all: true, first: 100) {
  id status gateway unitAmount { decimal currency } price { id } currentPeriodEnd cancelAtPeriodEnd
  failedAttempts nextRetryAt graceUntil createdAt } }`;
const ERRORS = "userErrors { code message }";
const ACTIONS = {
  pause: ["Pause", `mutation($input: SubscriptionActionInput!) { pauseSubscription(input: $input) { ${ERRORS} } }`],
  resume: ["Resume", `mutation($input: SubscriptionActionInput!) { resumeSubscription(input: $input) { ${ERRORS} } }`],
  cancel: ["Cancel at period end", `mutation($input: CancelSubscriptionInput!) { cancelSubscription(input: $input) { ${ERRORS} } }`],
};

// Which actions a subscription in this state can take.
function allowed(s) {
  if (["CANCELED", "INCOMPLETE_EXPIRED"].includes(s.status)) return [];
  const verbs = s.status === "PAUSED" ? ["resume"] : ["pause"];
  return s.cancelAtPeriodEnd ? verbs : [...verbs, "cancel"];
}

// Renders of this page so far: an answer re-renders the page only if nothing rendered it since the render
// whose button was pressed, so a double press (two requests, one key) cannot render twice and wipe what
// the staff member opened in between.
let renders = 0;

export async function render(main) {
  const generation = ++renders;
  const { subscriptions } = await gql(SUBSCRIPTIONS);
  const messages = h("div", { "aria-live": "polite" });

  async function act(subscription, verb, intent) {
    const [label, mutation] = ACTIONS[verb];
    try {
      const data = await gql(mutation, { input: { subscriptionId: subscription.id, idempotencyKey: keyFor(intent) } });
      const errors = Object.values(data)[0].userErrors;
      settle(intent);
      if (errors.length) {
        messages.replaceChildren(errorText(new Error(errors.map((e) => e.message).join(" "))));
        return;
      }
      announce(`${label}: done for ${subscription.id}.`);
      if (generation === renders) await render(main);
    } catch (error) {
      messages.replaceChildren(errorText(error instanceof ApiError ? error : new Error(`${error.message}: press again to retry the same request.`)));
    }
  }

  function confirmStep(subscription, verb) {
    const intent = `${verb}:${subscription.id}:${crypto.randomUUID()}`;
    const label = ACTIONS[verb][0];
    const box = h("div", { class: "confirm", role: "alertdialog", "aria-label": "Confirm" },
      h("p", {}, `${label}: subscription ${subscription.id}?`),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "danger", onclick: () => act(subscription, verb, intent) }, `Confirm: ${label.toLowerCase()}`),
        h("button", { type: "button", class: "secondary", onclick: () => box.remove() }, "Back")));
    messages.replaceChildren(box);
    box.querySelector("button").focus();
  }

  const rows = subscriptions.map((s) =>
    h("tr", {},
      h("td", {}, h("code", {}, s.id)),
      h("td", {}, h("span", { class: ["PAST_DUE", "UNPAID"].includes(s.status) ? "badge warn" : "badge" }, s.status)),
      h("td", { class: "num" }, money(s.unitAmount)),
      h("td", {}, when(s.currentPeriodEnd), s.cancelAtPeriodEnd ? " (cancels then)" : ""),
      h("td", { class: "num" }, s.failedAttempts),
      h("td", {}, when(s.nextRetryAt)),
      h("td", {}, when(s.graceUntil)),
      h("td", {}, h("div", { class: "actions" }, allowed(s).map((verb) =>
        h("button", { type: "button", class: "secondary", "aria-label": `${ACTIONS[verb][0]} subscription ${s.id}`, onclick: () => confirmStep(s, verb) }, `${ACTIONS[verb][0]}…`))))));
  main.replaceChildren(
    h("h1", {}, "Subscriptions"),
    messages,
    rows.length ? table(["Subscription", "Status", { label: "Price", num: true }, "Period ends", { label: "Failed attempts", num: true }, "Next retry", "Grace until", "Actions"], rows, { id: "subscriptions" }) : h("p", {}, "No subscriptions."),
  );
}
