// A module of the project's own, with named exports.
export const words = (text) => text.split(/\s+/).filter(Boolean);
export default function count(text) { return words(text).length; }
