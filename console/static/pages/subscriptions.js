// Subscriptions: status, dunning state (failed attempts, next retry, grace) and the plan, newest first.
import { gql } from "../api.js";
import { h, money, table, when } from "../dom.js";

const SUBSCRIPTIONS = `query { subscriptions(all: true, first: 100) {
  id status gateway unitAmount { decimal currency } price { id } currentPeriodEnd cancelAtPeriodEnd
  failedAttempts nextRetryAt graceUntil createdAt } }`;

export async function render(main) {
  const { subscriptions } = await gql(SUBSCRIPTIONS);
  const rows = subscriptions.map((s) =>
    h("tr", {},
      h("td", {}, h("code", {}, s.id)),
      h("td", {}, h("span", { class: ["PAST_DUE", "UNPAID"].includes(s.status) ? "badge warn" : "badge" }, s.status)),
      h("td", { class: "num" }, money(s.unitAmount)),
      h("td", {}, when(s.currentPeriodEnd), s.cancelAtPeriodEnd ? " (cancels then)" : ""),
      h("td", { class: "num" }, s.failedAttempts),
      h("td", {}, when(s.nextRetryAt)),
      h("td", {}, when(s.graceUntil))));
  main.replaceChildren(
    h("h1", {}, "Subscriptions"),
    rows.length ? table(["Subscription", "Status", { label: "Price", num: true }, "Period ends", { label: "Failed attempts", num: true }, "Next retry", "Grace until"], rows, { id: "subscriptions" }) : h("p", {}, "No subscriptions."),
  );
}
