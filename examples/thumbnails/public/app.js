const status = document.getElementById("status");
const thumbs = document.getElementById("thumbs");

async function refresh() {
  const list = await (await fetch("/api/thumbs")).json();
  thumbs.replaceChildren(...list.map((t) => {
    const img = document.createElement("img");
    img.src = `/api/thumbs/${encodeURIComponent(t.key)}`;
    img.alt = t.key;
    return img;
  }));
  return list;
}

document.getElementById("file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  status.textContent = `uploading ${file.name}…`;
  const { key, url } = await (await fetch(`/api/uploads?name=${encodeURIComponent(file.name)}`, { method: "POST" })).json();
  const put = await fetch(url, { method: "PUT", body: file });
  if (!put.ok) {
    status.textContent = `upload failed: ${put.status}`;
    return;
  }
  status.textContent = "uploaded; making the thumbnail…";
  for (let i = 0; i < 50; i++) {
    const list = await refresh();
    if (list.some((t) => t.key === `${key}.png`)) {
      status.textContent = `done: ${key}.png`;
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  status.textContent = "no thumbnail yet: see `updraft logs thumbnailer`";
});

refresh();
