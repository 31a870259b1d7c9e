// A small reactive translator: Chinese by default, English on request
// (?lang=en, a saved choice, or an English browser).
import { ref } from 'vue';

const saved = () => { try { return localStorage.getItem('kefu.lang'); } catch { return null; } };

function initialLocale() {
  const q = new URLSearchParams(location.search).get('lang');
  const pick = q || saved() || (navigator.language?.toLowerCase().startsWith('zh') ? 'zh' : null) || 'zh';
  return pick.startsWith('en') ? 'en' : 'zh';
}

export const locale = ref(initialLocale());

export function setLocale(l) {
  locale.value = l;
  try { localStorage.setItem('kefu.lang', l); } catch { /* private mode */ }
  document.documentElement.lang = l === 'en' ? 'en' : 'zh-CN';
}

// makeT returns t(key, params) over a { zh: {…}, en: {…} } dictionary;
// {name} in a phrase is replaced by params.name.
export function makeT(dict) {
  return (key, params = {}) => {
    const phrase = dict[locale.value]?.[key] ?? dict.zh[key] ?? key;
    return phrase.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ''));
  };
}
