// The login screen: log in, or create an account (protocol.md 4). The
// session it gets is kept in localStorage and handed to `onSession`.

import { writeJson } from "./storage.js";

export const SESSION_KEY = "vibemuse.session";
const $ = (id) => document.getElementById(id);

export class LoginScreen {
  constructor(api, onSession) {
    this.api = api;
    this.onSession = onSession;
    $("login-form").addEventListener("submit", (event) => this.submit(event));
  }

  show(message = "") {
    $("app-view").hidden = true;
    $("login-view").hidden = false;
    $("login-error").textContent = message;
    this.api.versions().then((v) => { $("login-server").textContent = `Server ${v.server.name}`; }, () => {});
    $("login-username").focus();
  }

  async submit(event) {
    event.preventDefault();
    const register = event.submitter?.value === "register";
    const username = $("login-username").value.trim();
    const password = $("login-password").value;
    $("login-error").textContent = "";
    try {
      const session = register ? await this.api.register(username, password) : await this.api.login(username, password);
      writeJson("local", SESSION_KEY, session);
      $("login-form").reset();
      $("login-view").hidden = true;
      this.onSession(session);
    } catch (error) {
      $("login-error").textContent = error.message;
    }
  }
}
