#!/usr/bin/python3
"""Drives a headless Firefox through its Marionette port: opens a URL,
answers the PIN prompt Firefox shows for the card's token, and prints the
page's text. Exit status 0 when the page loaded, 1 otherwise.

    marionette.py PORT URL ANSWERS [--expect-prompt]

Firefox must run with --marionette, --remote-allow-system-access and
marionette.port=PORT. ANSWERS are what to type into the prompts Firefox
shows, comma-separated, in order (the last one answers any later prompt):
a PIN is typed into the prompt's password field the way a person would,
"-" cancels the prompt. "654321,-": a wrong PIN once, then give up.
"""
import json
import socket
import sys
import time


class Marionette:
    """The Marionette wire protocol: 'LENGTH:JSON' messages, commands as
    [0, id, name, params], answers as [1, id, error, result]."""

    def __init__(self, port, deadline):
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.next_id = 0
        self.buffer = b""
        self.receive()  # the server's greeting

    def receive(self):
        while b":" not in self.buffer:
            self.read_more()
        length, _, rest = self.buffer.partition(b":")
        length = int(length)
        self.buffer = rest
        while len(self.buffer) < length:
            self.read_more()
        message, self.buffer = self.buffer[:length], self.buffer[length:]
        return json.loads(message)

    def read_more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("Firefox closed the Marionette connection")
        self.buffer += chunk

    def call(self, name, params=None):
        self.next_id += 1
        body = json.dumps([0, self.next_id, name, params or {}]).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body)
        while True:
            answer = self.receive()
            if answer[0] == 1 and answer[1] == self.next_id:
                if answer[2]:
                    raise RuntimeError(f"{name}: {answer[2]}")
                return answer[3]

    def script(self, source, args=(), context="content"):
        self.call("Marionette:SetContext", {"value": context})
        result = self.call("WebDriver:ExecuteScript", {"script": source, "args": list(args)})
        return result.get("value") if isinstance(result, dict) else result


# Chrome-context script, run before the page opens: answers every prompt
# Firefox opens from now on (a window of its own or a dialog inside the
# browser window) by typing the PIN into its password field and accepting
# it ("-" cancels), and records each prompt's text in a preference. The
# prompt is modal, so Marionette commands wait until it is answered: the
# answer must come from inside Firefox.
ANSWER_PROMPTS = r"""
const answers = arguments[0].split(",");
Services.prefs.setStringPref("p11card.test.prompts", "[]");
function answer(win) {
  if (win.p11cardAnswered) return;
  win.p11cardAnswered = true;
  const doc = win.document;
  const field = doc.getElementById("password1Textbox");
  const dialog = doc.getElementById("commonDialog");
  if (!dialog) return;
  const text = (doc.getElementById("infoBody") || {}).textContent || "";
  const seen = JSON.parse(Services.prefs.getStringPref("p11card.test.prompts"));
  seen.push(text);
  Services.prefs.setStringPref("p11card.test.prompts", JSON.stringify(seen));
  const pin = answers[Math.min(seen.length, answers.length) - 1];
  win.setTimeout(() => {
    if (pin === "-" || !field) { dialog.cancelDialog(); return; }
    field.value = pin;
    dialog.acceptDialog();
  }, 100);
}
Services.obs.addObserver({ observe(subject) { answer(subject); } }, "common-dialog-loaded");
Services.obs.addObserver({
  observe(win) {
    win.addEventListener("load", () => {
      if (win.location.href.startsWith("chrome://global/content/commonDialog")) answer(win);
    }, { once: true });
  }
}, "domwindowopened");
return true;
"""

PROMPTS_SEEN = r"""return JSON.parse(Services.prefs.getStringPref("p11card.test.prompts", "[]"));"""


# Chrome-context script: whether the selected tab is still loading, and the
# URI of the document it shows (an error page's own about: URI).
PAGE_STATE = r"""
const browser = Services.wm.getMostRecentWindow("navigator:browser").gBrowser.selectedBrowser;
const global = browser.browsingContext.currentWindowGlobal;
return [browser.webProgress.isLoadingDocument, global && global.documentURI ? global.documentURI.spec : ""];
"""


def main():
    port, url, answers = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    expect_prompt = "--expect-prompt" in sys.argv[4:]
    deadline = time.monotonic() + 90
    firefox = Marionette(port, deadline)
    firefox.call("WebDriver:NewSession", {"capabilities": {"alwaysMatch": {"pageLoadStrategy": "none"}}})
    firefox.call("Marionette:SetContext", {"value": "content"})
    firefox.script(ANSWER_PROMPTS, [answers], context="chrome")
    # Navigate from a timer: the PIN prompt is modal, and a Navigate command
    # would not answer until it is closed.
    firefox.script("const url = arguments[0]; window.setTimeout(() => { window.location.href = url; }, 50);", [url])
    prompted = False
    seen = []
    while time.monotonic() < deadline:
        # The tab's state from the chrome side: a content script would wait
        # for the navigation that the prompt holds up.
        state = firefox.script(PAGE_STATE, context="chrome")
        prompts = firefox.script(PROMPTS_SEEN, context="chrome")
        for text in prompts[len(seen):]:
            print(f"PIN prompt: {' '.join(text.split())}")
        seen = prompts
        prompted = bool(seen)
        if state and not state[0] and state[1].startswith(("about:neterror", "about:certerror")):
            print(f"Firefox: error page {state[1]}")
            return 1
        if state and not state[0] and state[1].startswith(url):
            text = firefox.script("return document.body ? document.body.innerText : '';")
            print(text)
            return 0 if (prompted or not expect_prompt) else 1
        time.sleep(0.2)
    print("Firefox: the page did not load in time", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
