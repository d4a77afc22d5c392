// Gateways: which are configured, their health as the answering instance's circuit breaker sees it,
// and what each can do, from the public `paymentOptions` query.
import { gql } from "../api.js";
import { h, table } from "../dom.js";

const OPTIONS = `query { paymentOptions { gateway available circuit { state failureRate } capabilities {
  payments manualCapture refunds billing disputes hostedCheckout customerDirectory testClock
  clientTokenization { sdk } } } }`;
const CAPABILITIES = [
  ["payments", "Payments"], ["manualCapture", "Manual capture"], ["refunds", "Refunds"], ["billing", "Billing"],
  ["disputes", "Disputes"], ["hostedCheckout", "Hosted checkout"], ["customerDirectory", "Customers"], ["testClock", "Test clock"],
];

export async function render(main) {
  const { paymentOptions } = await gql(OPTIONS);
  main.replaceChildren(
    h("h1", {}, "Gateways"),
    table(["Gateway", "Circuit", "Failure rate", ...CAPABILITIES.map(([, label]) => label), "Browser SDK"],
      paymentOptions.map((o) => h("tr", {},
        h("th", { scope: "row" }, o.gateway),
        h("td", { class: "circuit" }, h("span", { class: "badge" }, o.circuit.state)),
        h("td", { class: "num" }, `${(o.circuit.failureRate * 100).toFixed(1)} %`),
        CAPABILITIES.map(([name]) => h("td", {}, o.capabilities[name] ? "yes" : "no")),
        h("td", {}, o.capabilities.clientTokenization ? o.capabilities.clientTokenization.sdk : ""))),
      { id: "gateways" }),
  );
}
