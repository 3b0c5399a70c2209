// A Docusaurus 3 site in English and Chinese whose build fails on any broken
// link, anchor or image (tests/test_docusaurus_build.py). The test copies the
// pages into docs/ and translate-dir writes i18n/zh/.
export default {
  title: 'translate-dir check',
  url: 'https://example.com',
  baseUrl: '/',
  i18n: {defaultLocale: 'en', locales: ['en', 'zh']},
  onBrokenLinks: 'throw',
  onBrokenAnchors: 'throw',
  markdown: {hooks: {onBrokenMarkdownLinks: 'throw', onBrokenMarkdownImages: 'throw'}},
  presets: [
    [
      'classic',
      {
        docs: {routeBasePath: '/'},
        blog: false,
        theme: {},
      },
    ],
  ],
};
