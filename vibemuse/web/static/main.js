// Entry point of the web client (loaded by index.html as a module; no build step).
import { App } from "./app.js";

new App().boot();
