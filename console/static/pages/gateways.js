// Gateways: which are configured and what each can do, from the public `paymentOptions` query.
// Health (circuit state) is not in the API yet, so it is not shown.
import { gql } from "../api.js";
import { h, table } from "../dom.js";

const OPTIONS = `query { paymentOptions { gateway capabilities {
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
    table(["Gateway", ...CAPABILITIES.map(([, label]) => label), "Browser SDK"],
      paymentOptions.map((o) => h("tr", {},
        h("th", { scope: "row" }, o.gateway),
        CAPABILITIES.map(([name]) => h("td", {}, o.capabilities[name] ? "yes" : "no")),
        h("td", {}, o.capabilities.clientTokenization ? o.capabilities.clientTokenization.sdk : ""))),
      { id: "gateways" }),
  );
}
