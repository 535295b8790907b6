// Restores the remembered light/dark choice (unless the URL asks for a theme).
() => {
  let mode = null;
  try { mode = localStorage.getItem('neoc-theme'); } catch (e) {}
  const param = new URLSearchParams(window.location.search).get('__theme');
  if (!param && (mode === 'dark' || mode === 'light')) {
    document.body.classList.toggle('dark', mode === 'dark');
  }
}
