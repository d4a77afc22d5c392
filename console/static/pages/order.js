// One order: lines, payments, refunds, disputes, the ledger, the audit timeline, and the staff actions
// the API allows.
// Every action asks for confirmation first and carries the idempotency key of its intention
// (intents.js), so a double click or a retry happens once.
import { ApiError, gql } from "../api.js";
import { announce, errorText, field, h, money, table, when } from "../dom.js";
import { keyFor, settle } from "../intents.js";

const MONEY = "{ amount decimal currency exponent }";
const ORDER = `query($id: ID!) { order(id: $id) {
  id status total ${MONEY} createdAt updatedAt
  lineItems { productName quantity unitAmount ${MONEY} total ${MONEY} }
  payments { id gateway gatewayReference status captureMethod amount ${MONEY} amountCaptured ${MONEY}
    amountRefunded ${MONEY} declineCode failureMessage createdAt
    refunds { id status amount ${MONEY} reason failureReason createdAt }
    ledgerEvents { id createdAt type source paymentId refundId disputeId statusBefore statusAfter amount ${MONEY} } } } }`;
const AUDIT = `query($id: ID!) { auditLog(entityId: $id) { id createdAt actor action entityType statusBefore statusAfter amount ${MONEY} reason } }`;
const DISPUTES = `query { disputes(first: 200) { id status reason amount ${MONEY} evidenceDueBy dueSoon order { id } } }`;
const PAYLOAD = "userErrors { code field message }";
const MUTATIONS = {
  capture: `mutation($input: CapturePaymentInput!) { capturePayment(input: $input) { ${PAYLOAD} } }`,
  void: `mutation($input: CancelPaymentInput!) { cancelPayment(input: $input) { ${PAYLOAD} } }`,
  refund: `mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { refund { id status amount ${MONEY} } ${PAYLOAD} } }`,
  cancel: `mutation($input: CancelOrderInput!) { cancelOrder(input: $input) { ${PAYLOAD} } }`,
};

// Decimal major units typed by a person -> integer minor units, exactly (no floating point).
function toMinor(text, exponent) {
  const match = /^\s*(\d+)(?:\.(\d+))?\s*$/.exec(text);
  if (!match || (match[2] || "").length > exponent) return null;
  return Number(match[1]) * 10 ** exponent + Number((match[2] || "").padEnd(exponent, "0") || 0);
}

// Renders of this page so far: an answer re-renders the page only if nothing rendered it since the render
// whose button was pressed, so a double press (two requests, one key) cannot render twice and wipe what
// the staff member opened in between.
let renders = 0;

export async function render(main, orderId) {
  const generation = ++renders;
  const [{ order }, { disputes }] = await Promise.all([gql(ORDER, { id: orderId }), gql(DISPUTES)]);
  const refunds = order.payments.flatMap((p) => p.refunds);
  // The ledger, oldest first: each money movement once, with the refund or dispute it belongs to.
  const ledger = order.payments.flatMap((p) => p.ledgerEvents).sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
  const ids = [order.id, ...order.payments.map((p) => p.id), ...refunds.map((r) => r.id)];
  const logs = await Promise.all(ids.map((id) => gql(AUDIT, { id })));
  const timeline = logs.flatMap((l) => l.auditLog).sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  const actions = h("section", { "aria-labelledby": "actions-title" });

  // Sends an action; the same intention always sends the same key. A definitive answer (done or
  // refused) ends the intention; a lost answer keeps it, so "Try again" is the same request.
  async function act(intent, name, input, done) {
    try {
      const data = await gql(MUTATIONS[name], { input: { ...input, idempotencyKey: keyFor(intent) } });
      const errors = Object.values(data)[0].userErrors;
      settle(intent);
      if (errors.length) {
        actions.append(errorText(new Error(errors.map((e) => e.message).join(" "))));
        return;
      }
      announce(done);
      if (generation === renders) await render(main, orderId);
    } catch (error) {
      if (!(error instanceof ApiError)) actions.append(errorText(new Error(`${error.message}: press the button again to retry the same request.`)));
      else actions.append(errorText(error));
    }
  }

  function confirmStep(text, label, onConfirm) {
    const box = h("div", { class: "confirm", role: "alertdialog", "aria-label": "Confirm" },
      h("p", {}, text),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "danger", onclick: onConfirm }, label),
        h("button", { type: "button", class: "secondary", onclick: () => box.remove() }, "Back")));
    actions.append(box);
    box.querySelector("button").focus();
  }

  function refundForm(payment) {
    const left = payment.amountCaptured.amount - payment.amountRefunded.amount;
    const amount = h("input", { id: `refund-amount-${payment.id}`, inputmode: "decimal", placeholder: `all (${(left / 10 ** payment.amount.exponent).toFixed(payment.amount.exponent)})` });
    const reason = h("input", { id: `refund-reason-${payment.id}`, required: true });
    const form = h("form", { "aria-label": `Refund payment ${payment.id}` },
      field(`Amount (${payment.amount.currency}, empty for all that is left)`, amount),
      field("Refund reason", reason),
      h("button", { type: "submit" }, "Refund…"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const minor = amount.value.trim() ? toMinor(amount.value, payment.amount.exponent) : null;
      if (amount.value.trim() && (minor === null || minor <= 0)) {
        actions.append(errorText(new Error("The amount must be a positive number with at most the currency's decimals.")));
        return;
      }
      const shown = minor === null ? "all that is left" : `${amount.value.trim()} ${payment.amount.currency}`;
      const intent = `refund:${payment.id}:${minor}:${reason.value}:${crypto.randomUUID()}`;
      confirmStep(`Refund ${shown} of payment ${payment.id} (reason: ${reason.value})?`, "Confirm refund", () =>
        act(intent, "refund", { paymentId: payment.id, amount: minor, reason: reason.value }, "Refund sent."));
    });
    return form;
  }

  for (const payment of order.payments) {
    const buttons = [];
    if (payment.status === "AUTHORIZED") {
      const capture = `capture:${payment.id}:${crypto.randomUUID()}`;
      const voiding = `void:${payment.id}:${crypto.randomUUID()}`;
      buttons.push(h("button", { type: "button", onclick: () => confirmStep(`Capture ${money(payment.amount)}?`, "Confirm capture", () => act(capture, "capture", { paymentId: payment.id }, "Captured.")) }, "Capture…"));
      buttons.push(h("button", { type: "button", class: "secondary", onclick: () => confirmStep(`Void payment ${payment.id}?`, "Confirm void", () => act(voiding, "void", { paymentId: payment.id }, "Voided.")) }, "Void…"));
    }
    actions.append(h("h3", {}, `Payment ${payment.id}`), h("div", { class: "actions" }, buttons));
    if (payment.amountCaptured.amount > payment.amountRefunded.amount) actions.append(refundForm(payment));
  }
  if (!["CANCELED", "REFUNDED"].includes(order.status)) {
    const cancelIntent = `cancel:${order.id}:${crypto.randomUUID()}`;
    const reason = h("input", { id: "cancel-reason" });
    const form = h("form", { "aria-label": "Cancel order" }, field("Reason for cancelling", reason), h("button", { type: "submit", class: "danger" }, "Cancel order…"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      confirmStep("Cancel this order, refunding or voiding what was paid?", "Confirm cancel", () =>
        act(cancelIntent, "cancel", { orderId: order.id, reason: reason.value }, "Order canceled."));
    });
    actions.append(form);
  }

  const mine = disputes.filter((d) => d.order.id === order.id);
  main.replaceChildren(
    h("h1", {}, "Order ", h("code", {}, order.id)),
    h("dl", {},
      h("dt", {}, "Status"), h("dd", { id: "order-status" }, h("span", { class: "badge" }, order.status)),
      h("dt", {}, "Total"), h("dd", {}, money(order.total)),
      h("dt", {}, "Created"), h("dd", {}, when(order.createdAt))),
    h("h2", {}, "Lines"),
    table(["Product", { label: "Quantity", num: true }, { label: "Unit", num: true }, { label: "Total", num: true }],
      order.lineItems.map((l) => h("tr", {}, h("td", {}, l.productName), h("td", { class: "num" }, l.quantity), h("td", { class: "num" }, money(l.unitAmount)), h("td", { class: "num" }, money(l.total))))),
    h("h2", {}, "Payments"),
    table(["Payment", "Gateway", "Status", { label: "Amount", num: true }, { label: "Captured", num: true }, { label: "Refunded", num: true }, "Decline"],
      order.payments.map((p) => h("tr", {}, h("td", {}, h("code", {}, p.id)), h("td", {}, p.gateway), h("td", {}, p.status), h("td", { class: "num" }, money(p.amount)), h("td", { class: "num" }, money(p.amountCaptured)), h("td", { class: "num payment-refunded" }, money(p.amountRefunded)), h("td", {}, p.declineCode || p.failureMessage || ""))),
      { id: "payments-table" }),
    h("h2", {}, "Refunds"),
    refunds.length
      ? table(["Refund", "Status", { label: "Amount", num: true }, "Reason", "Created"],
        refunds.map((r) => h("tr", {}, h("td", {}, h("code", {}, r.id)), h("td", {}, r.status, r.failureReason ? ` (${r.failureReason})` : ""), h("td", { class: "num" }, money(r.amount)), h("td", {}, r.reason), h("td", {}, when(r.createdAt)))),
        { id: "refunds-table" })
      : h("p", {}, "No refunds."),
    h("h2", {}, "Disputes"),
    mine.length
      ? table(["Dispute", "Status", "Reason", { label: "Amount", num: true }, "Evidence due"],
        mine.map((d) => h("tr", {}, h("td", {}, h("a", { href: `#/disputes/${d.id}` }, d.id)), h("td", {}, d.status), h("td", {}, d.reason), h("td", { class: "num" }, money(d.amount)), h("td", {}, when(d.evidenceDueBy)))))
      : h("p", {}, "No disputes."),
    h("h2", { id: "actions-title" }, "Actions"),
    actions,
    h("h2", {}, "Ledger"),
    table(["When", "Event", { label: "Amount", num: true }, "Payment", "Refund or dispute", "Payment status", "Source"],
      ledger.map((e) => h("tr", {}, h("td", {}, when(e.createdAt)), h("td", {}, e.type), h("td", { class: "num" }, money(e.amount)),
        h("td", {}, h("code", {}, e.paymentId)), h("td", {}, e.refundId ? h("code", {}, e.refundId) : e.disputeId ? h("a", { href: `#/disputes/${e.disputeId}` }, e.disputeId) : ""),
        h("td", {}, [e.statusBefore, e.statusAfter].filter(Boolean).join(" → ")), h("td", {}, e.source))),
      { id: "ledger" }),
    h("h2", {}, "Timeline"),
    table(["When", "Who", "What", "Entity", "Status", { label: "Amount", num: true }, "Reason"],
      timeline.map((r) => h("tr", {}, h("td", {}, when(r.createdAt)), h("td", {}, r.actor), h("td", {}, r.action), h("td", {}, r.entityType), h("td", {}, [r.statusBefore, r.statusAfter].filter(Boolean).join(" → ")), h("td", { class: "num" }, money(r.amount)), h("td", {}, r.reason))),
      { id: "timeline" }),
  );
}
