// Light/dark toggle that works offline: Gradio styles `body.dark`; the choice is remembered.
() => {
  const dark = !document.body.classList.contains('dark');
  document.body.classList.toggle('dark', dark);
  try { localStorage.setItem('neoc-theme', dark ? 'dark' : 'light'); } catch (e) {}
}
