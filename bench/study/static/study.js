// One trial of the study: reveal every image at once when all have loaded (the order in which
// images arrive must not show on screen), time the answer from then, send the vote with an id
// made once, resend the same id on failure (the server stores a vote id once), then go on.
"use strict";
(function () {
  const trial = document.getElementById("trial");
  if (!trial) return;
  const status = document.getElementById("status");
  const options = Array.from(trial.querySelectorAll(".option"));
  const images = Array.from(trial.querySelectorAll("img"));
  let shownAt = null;
  let sent = false;

  Promise.all(images.map((img) => img.decode().catch(() => null))).then(() => {
    trial.classList.remove("loading");
    shownAt = performance.now();
  });

  function newVoteId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  async function send(body, attempt) {
    try {
      const response = await fetch("/vote", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(body),
      });
      if (response.ok || response.status === 409) {
        window.location.replace("/trial");
        return;
      }
      const answer = await response.json().catch(() => ({}));
      status.textContent = `Your answer was not accepted (${answer.error || response.status}); reload the page.`;
    } catch (error) {
      if (attempt >= 8) {
        status.textContent = "No connection to the server; your answer will be sent when you reload.";
        return;
      }
      status.textContent = "Sending again…";
      setTimeout(() => send(body, attempt + 1), 500 * 2 ** Math.min(attempt, 4));
    }
  }

  function choose(index) {
    if (sent || shownAt === null || index < 0 || index >= options.length) return;
    sent = true;
    const option = options[index];
    option.classList.add("picked");
    status.textContent = "Saving…";
    send(
      {
        vote_id: newVoteId(),
        voter: trial.dataset.voter,
        trial: trial.dataset.trial,
        choice: option.dataset.choice,
        ms: Math.round(performance.now() - shownAt),
      },
      0,
    );
  }

  options.forEach((option, index) => option.addEventListener("click", () => choose(index)));
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (/^[1-9]$/.test(event.key)) choose(Number(event.key) - 1);
    else if (trial.dataset.pairs === "yes" && event.key === "ArrowLeft") choose(0);
    else if (trial.dataset.pairs === "yes" && event.key === "ArrowRight") choose(1);
  });
})();
