// The staff member's token: kept in sessionStorage (gone with the tab), never in a URL that reaches
// a server. A sign-in link carries it in the fragment (#token=...), which browsers never send.
const KEY = "payql.console.token";

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

export function signIn(value) {
  sessionStorage.setItem(KEY, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

// Takes a token from a sign-in link's fragment, then removes it from the address bar and history.
export function takeTokenFromFragment() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return false;
  signIn(decodeURIComponent(match[1]));
  history.replaceState(null, "", `${location.pathname}#/orders`);
  return true;
}
