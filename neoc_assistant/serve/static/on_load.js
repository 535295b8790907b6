// Restores the remembered light/dark choice (unless the URL asks for a theme), and makes the chat's
// copy buttons copy what a message shows: its content is the server-rendered, sanitised HTML of
// serve/safe_html.py (a <div class="neoc-md">), which would otherwise be copied as markup.
() => {
  let mode = null;
  try { mode = localStorage.getItem('neoc-theme'); } catch (e) {}
  const param = new URLSearchParams(window.location.search).get('__theme');
  if (!param && (mode === 'dark' || mode === 'light')) {
    document.body.classList.toggle('dark', mode === 'dark');
  }

  const marker = '<div class="neoc-md">';
  const plain = (value) => {
    if (typeof value !== 'string' || !value.includes(marker)) return value;
    const text = value
      .replace(/<br\s*\/?>/gi, '\n')
      .replace(/<\/(p|li|h\d|pre|blockquote|tr|div|summary)>/gi, '\n')
      .replace(/<[^<>]*>/g, '');
    const decoder = document.createElement('textarea');  // decodes character references, runs nothing
    decoder.innerHTML = text;
    return decoder.value.replace(/\n\s*\n+/g, '\n').trim();
  };
  if (navigator.clipboard && navigator.clipboard.writeText && !navigator.clipboard.neocPlain) {
    const write = navigator.clipboard.writeText.bind(navigator.clipboard);
    navigator.clipboard.writeText = (value) => write(plain(value));
    navigator.clipboard.neocPlain = true;
  }
  // Without a secure context (http:// on a LAN address) Gradio copies from a hidden textarea instead.
  document.addEventListener('copy', (event) => {
    const el = document.activeElement;
    if (el && el.tagName === 'TEXTAREA' && el.value.includes(marker)) {
      event.clipboardData.setData('text/plain', plain(el.value));
      event.preventDefault();
    }
  }, true);
}
