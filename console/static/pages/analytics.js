// Analytics: revenue per day per currency (never summed across currencies), payment outcomes and
// failure rate per gateway, decline reasons and dispute rate over a date range; figures as tables,
// revenue also as a bar chart drawn here in SVG.
import { gql } from "../api.js";
import { field, h, table } from "../dom.js";

const ANALYTICS = `query($since: DateTime!, $until: DateTime!) {
  revenueByDay(since: $since, until: $until) { day currency gateway gross { amount decimal } refunded { decimal } net { amount decimal } }
  paymentOutcomes(since: $since, until: $until) {
    overall { succeeded failed total successRate failureRate }
    byGateway { gateway succeeded failed total successRate failureRate } }
  declineReasons(since: $since, until: $until) { gateway declineCode count }
  disputeRate(since: $since, until: $until) { currency disputed paid rate } }`;
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function percent(rate) {
  return rate === null ? "–" : `${(rate * 100).toFixed(1)} %`;
}

// One bar per day: the day's gross in this currency (all gateways of that currency added up).
function chart(currency, rows) {
  const days = [...new Set(rows.map((r) => r.day))].sort();
  const totals = days.map((day) => rows.filter((r) => r.day === day).reduce((sum, r) => sum + r.gross.amount, 0));
  const width = Math.max(240, days.length * 48);
  const height = 160;
  const top = Math.max(...totals, 1);
  const figure = svg("svg", { class: "chart", width, height: height + 30, role: "img", "aria-label": `Gross revenue per day in ${currency}` });
  days.forEach((day, i) => {
    const bar = Math.round((totals[i] / top) * height);
    figure.append(svg("rect", { x: i * 48 + 8, y: height - bar, width: 32, height: bar, "data-day": day, "data-amount": totals[i] }));
    figure.append(svg("text", { x: i * 48 + 4, y: height + 14 }, day.slice(5)));
  });
  return figure;
}

export async function render(main) {
  const today = new Date();
  const monthAgo = new Date(today.getTime() - 30 * 24 * 3600 * 1000);
  const since = h("input", { id: "since", type: "date", value: monthAgo.toISOString().slice(0, 10), required: true });
  const until = h("input", { id: "until", type: "date", value: today.toISOString().slice(0, 10), required: true });
  const results = h("div", { id: "analytics-results", "aria-live": "polite" });
  const form = h("form", { "aria-label": "Date range" }, field("From (UTC)", since), field("To (UTC, inclusive)", until), h("button", { type: "submit" }, "Show"));

  // Only the latest request may draw: an earlier, slower answer must not replace a newer range.
  let latest = 0;

  async function load() {
    const end = new Date(`${until.value}T00:00:00Z`);
    end.setUTCDate(end.getUTCDate() + 1);
    const range = { since: `${since.value}T00:00:00Z`, until: end.toISOString() };
    const request = ++latest;
    const data = await gql(ANALYTICS, range);
    if (request !== latest) return;
    const currencies = [...new Set(data.revenueByDay.map((r) => r.currency))].sort();
    const outcomes = [{ gateway: "all gateways", ...data.paymentOutcomes.overall }, ...data.paymentOutcomes.byGateway];
    results.replaceChildren(
      h("h2", {}, "Revenue per day"),
      currencies.length ? "" : h("p", {}, "No revenue in this range."),
      ...currencies.map((currency) => {
        const rows = data.revenueByDay.filter((r) => r.currency === currency);
        return h("section", { class: "currency", "data-currency": currency, "aria-label": `Revenue in ${currency}` },
          h("h3", {}, currency),
          chart(currency, rows),
          table(["Day", "Gateway", { label: "Gross", num: true }, { label: "Refunded", num: true }, { label: "Net", num: true }],
            rows.map((r) => h("tr", {}, h("td", {}, r.day), h("td", {}, r.gateway), h("td", { class: "num" }, r.gross.decimal), h("td", { class: "num" }, r.refunded.decimal), h("td", { class: "num" }, r.net.decimal))),
            { class: "revenue" }));
      }),
      h("h2", {}, "Payment outcomes"),
      table(["Gateway", { label: "Succeeded", num: true }, { label: "Failed", num: true }, { label: "Total", num: true }, { label: "Failure rate", num: true }],
        outcomes.map((o) => h("tr", {}, h("td", {}, o.gateway), h("td", { class: "num" }, o.succeeded), h("td", { class: "num" }, o.failed), h("td", { class: "num" }, o.total), h("td", { class: "num" }, percent(o.failureRate)))),
        { id: "outcomes" }),
      h("h2", {}, "Decline reasons"),
      table(["Gateway", "Decline code", { label: "Count", num: true }],
        data.declineReasons.map((r) => h("tr", {}, h("td", {}, r.gateway), h("td", {}, r.declineCode || "(none)"), h("td", { class: "num" }, r.count))),
        { id: "declines" }),
      h("h2", {}, "Dispute rate"),
      table(["Currency", { label: "Disputed", num: true }, { label: "Paid", num: true }, { label: "Rate", num: true }],
        data.disputeRate.map((r) => h("tr", {}, h("td", {}, r.currency), h("td", { class: "num" }, r.disputed), h("td", { class: "num" }, r.paid), h("td", { class: "num" }, percent(r.rate)))),
        { id: "dispute-rate" }),
    );
    // Says which window the figures are for (screen readers hear the heading; tests wait on it).
    results.dataset.range = `${range.since}/${range.until}`;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  main.replaceChildren(h("h1", {}, "Analytics"), form, results);
  await load();
}
