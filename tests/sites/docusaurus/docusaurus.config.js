// Only its presence matters: translate-dir detects a Docusaurus site from it.
export default {title: 'Site test'};
