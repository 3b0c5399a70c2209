// Written for this corpus (not from facebook/docusaurus): the configuration of
// tests/sites/docusaurus-app with the link checks that pages outside the corpus
// would fail relaxed to warnings. The pages link to ../../cli.md,
// ../../static-assets.md and ../../api/plugins/plugin-ideal-image.md, which are
// not here. Broken anchors to pages that are here, and broken images, still
// fail the build; bench/sites.py counts the links that land from the HTML.
// Used as `docusaurus build --config docusaurus.corpus.config.js`.
import config from './docusaurus.config.js';

export default {
  ...config,
  onBrokenLinks: 'warn',
  markdown: {
    ...config.markdown,
    hooks: {...config.markdown.hooks, onBrokenMarkdownLinks: 'warn'},
  },
};
