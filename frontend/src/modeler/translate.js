/* bpmn-js's own strings (palette, context pad, properties panel) and ours, looked up in
 * the dictionary the page hands in (Flask-Babel renders it in the user's language). */
export function createTranslate(strings) {
  const dictionary = strings || {};
  return function translate(template, replacements) {
    const text = Object.prototype.hasOwnProperty.call(dictionary, template) ? dictionary[template] : template;
    const values = replacements || {};
    return text.replace(/{([^}]+)}/g, (match, key) => (key in values ? values[key] : match));
  };
}
