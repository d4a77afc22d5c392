// The shopper's token (sessionStorage; a link may carry it in the fragment, never sent to a server),
// GraphQL over HTTP, and the card tokenization call that keeps the card number away from /graphql.
const KEY = "payql.shop.token";

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

export function takeTokenFromFragment() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return;
  sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
  history.replaceState(null, "", `${location.pathname}#/`);
}

export function signIn(value) {
  sessionStorage.setItem(KEY, value.trim());
}

export async function gql(query, variables = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token()}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
  return body.data;
}

// The card goes to the sandbox's tokenization endpoint, which answers a token; only the token goes to
// PayQL's checkout. A real shop uses its gateway's browser SDK here (paymentOptions names it).
export async function tokenizeCard(number, expMonth, expYear, cvc) {
  const response = await fetch("/sandbox/tokens", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ number: number.replaceAll(" ", ""), exp_month: Number(expMonth), exp_year: Number(expYear), cvc }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : "The card was refused.");
  return body.id;
}
