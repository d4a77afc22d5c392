// One dispute: the evidence gathered when it opened, notes and fulfillments (add both), and the
// submission of the evidence to the gateway, once (its key is reused on retry: intents.js).
import { ApiError, gql } from "../api.js";
import { announce, errorText, field, h, money, table, when } from "../dom.js";
import { keyFor, settle } from "../intents.js";

const DISPUTE = `query($id: ID!) { dispute(id: $id) {
  id status reason gateway gatewayReference amount { decimal currency } evidenceDueBy dueSoon evidenceSubmittedAt closedAt createdAt
  evidence notes { id author body createdAt } order { id status } payment { id }
  fulfillments { id carrier trackingNumber shippedAt recordedBy createdAt } } }`;
const ERRORS = "userErrors { code field message }";
const ADD_NOTE = `mutation($input: AddDisputeNoteInput!) { addDisputeNote(input: $input) { ${ERRORS} } }`;
const FULFILL = `mutation($input: RecordFulfillmentInput!) { recordFulfillment(input: $input) { ${ERRORS} } }`;
const SUBMIT = `mutation($input: SubmitDisputeEvidenceInput!) { submitDisputeEvidence(input: $input) { ${ERRORS} } }`;

// Evidence is a JSON object of named facts: shown as a definition list, nested values as JSON.
function evidenceList(evidence) {
  const entries = Object.entries(evidence || {});
  if (!entries.length) return h("p", {}, "No evidence gathered.");
  return h("dl", { id: "evidence" }, entries.flatMap(([name, value]) => [
    h("dt", {}, name.replaceAll("_", " ")),
    h("dd", {}, typeof value === "object" && value !== null ? h("pre", {}, JSON.stringify(value, null, 2)) : String(value)),
  ]));
}

// Renders of this page so far: an answer re-renders the page only if nothing rendered it since the render
// whose button was pressed, so a double press (two requests, one key) cannot render twice and wipe what
// the staff member opened in between.
let renders = 0;

export async function render(main, disputeId) {
  const generation = ++renders;
  const { dispute } = await gql(DISPUTE, { id: disputeId });
  const messages = h("div", { "aria-live": "polite" });

  async function send(query, input, intent, done) {
    try {
      const data = await gql(query, { input: intent ? { ...input, idempotencyKey: keyFor(intent) } : input });
      const errors = Object.values(data)[0].userErrors;
      if (intent) settle(intent);
      if (errors.length) {
        messages.replaceChildren(errorText(new Error(errors.map((e) => e.message).join(" "))));
        return;
      }
      announce(done);
      if (generation === renders) await render(main, disputeId);
    } catch (error) {
      messages.replaceChildren(errorText(error instanceof ApiError ? error : new Error(`${error.message}: press again to retry the same request.`)));
    }
  }

  const note = h("textarea", { id: "note-body", rows: 3, required: true });
  const noteForm = h("form", { class: "stack", "aria-label": "Add a note" }, field("Note", note), h("button", { type: "submit" }, "Add note"));
  noteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    send(ADD_NOTE, { disputeId: dispute.id, body: note.value }, null, "Note added.");
  });

  const carrier = h("input", { id: "carrier", required: true });
  const tracking = h("input", { id: "tracking", required: true });
  const shipped = h("input", { id: "shipped-at", type: "date" });
  const shipIntent = `fulfill:${dispute.order.id}:${crypto.randomUUID()}`;
  const shipForm = h("form", { "aria-label": "Record a fulfillment" }, field("Carrier", carrier), field("Tracking number", tracking), field("Shipped on", shipped), h("button", { type: "submit" }, "Add fulfillment"));
  shipForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const shippedAt = shipped.value ? `${shipped.value}T00:00:00Z` : null;
    send(FULFILL, { orderId: dispute.order.id, carrier: carrier.value, trackingNumber: tracking.value, shippedAt }, shipIntent, "Fulfillment recorded.");
  });

  const submitted = Boolean(dispute.evidenceSubmittedAt);
  const extra = h("textarea", { id: "extra-text", rows: 3 });
  const submitIntent = `submit:${dispute.id}`;
  const submitForm = h("form", { class: "stack", "aria-label": "Submit the evidence" },
    field("Extra text for the gateway", extra),
    h("button", { type: "submit", class: "danger", disabled: submitted }, submitted ? "Evidence submitted" : "Submit evidence…"));
  submitForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const confirm = h("div", { class: "confirm", role: "alertdialog", "aria-label": "Confirm" },
      h("p", {}, "Send the evidence, notes and fulfillments to the gateway? This can be done only once."),
      h("button", { type: "button", class: "danger", onclick: () => send(SUBMIT, { disputeId: dispute.id, extraText: extra.value }, submitIntent, "Evidence submitted.") }, "Confirm submission"));
    messages.replaceChildren(confirm);
    confirm.querySelector("button").focus();
  });

  main.replaceChildren(
    h("h1", {}, "Dispute ", h("code", {}, dispute.id)),
    h("dl", {},
      h("dt", {}, "Status"), h("dd", { id: "dispute-status-value" }, h("span", { class: "badge" }, dispute.status)),
      h("dt", {}, "Reason"), h("dd", {}, dispute.reason),
      h("dt", {}, "Amount"), h("dd", {}, money(dispute.amount)),
      h("dt", {}, "Evidence due"), h("dd", {}, when(dispute.evidenceDueBy), " ", dispute.dueSoon && !submitted ? h("span", { class: "badge warn" }, "due soon") : ""),
      h("dt", {}, "Submitted"), h("dd", {}, submitted ? when(dispute.evidenceSubmittedAt) : "not yet"),
      h("dt", {}, "Order"), h("dd", {}, h("a", { href: `#/orders/${dispute.order.id}` }, dispute.order.id), ` (${dispute.order.status})`)),
    h("h2", {}, "Evidence"), evidenceList(dispute.evidence),
    h("h2", {}, "Notes"),
    dispute.notes.length ? h("ul", { id: "notes" }, dispute.notes.map((n) => h("li", {}, h("strong", {}, n.author), ` (${when(n.createdAt)}): `, n.body))) : h("p", {}, "No notes."),
    submitted ? "" : noteForm,
    h("h2", {}, "Fulfillments"),
    dispute.fulfillments.length ? table(["Carrier", "Tracking", "Shipped", "Recorded by"], dispute.fulfillments.map((f) => h("tr", {}, h("td", {}, f.carrier), h("td", {}, f.trackingNumber), h("td", {}, when(f.shippedAt)), h("td", {}, f.recordedBy)))) : h("p", {}, "No fulfillments."),
    submitted ? "" : shipForm,
    h("h2", {}, "Submit"), submitForm, messages,
  );
}
