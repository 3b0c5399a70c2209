// Fallback when tests/sites/docusaurus-app is not installed (bench/sites.py),
// not from facebook/docusaurus and no Docusaurus build: compile each MDX
// page named on the command line with @mdx-js/mdx v3 and remark-directive, as
// Docusaurus 3 does, after the same source preprocessing its mdx-loader applies
// by default (markdown.mdx1Compat: HTML comments, heading ids; and
// unwrapMdxCodeBlocks). Prints one JSON line per file (the container directive
// names it found); exits 1 on any compile error. The packages come from
// tests/sites/mdx (`npm ci` there).
import {compileAll} from '../../../sites/mdx/compile-all.mjs';

// Docusaurus: escapeMarkdownHeadingIds (packages/docusaurus-utils/src/markdownUtils.ts).
function escapeMarkdownHeadingIds(content) {
  return content.replaceAll(/(?:^|\n)#{1,6}(?!#).*/g, (heading) =>
    heading.replace('{#', '\\{#').replace('\\\\{#', '\\{#'),
  );
}

// Docusaurus: unwrapMdxCodeBlocks (three backticks only, as used here).
function unwrapMdxCodeBlocks(content) {
  return content.replaceAll(
    /(?<begin>^|\r?\n)(?<indentStart>\x20*)```(?<spaces>\x20*)mdx-code-block\r?\n(?<children>.*?)\r?\n(?<indentEnd>\x20*)```(?<end>\r?\n|$)/gs,
    (...args) => {
      const groups = args.at(-1);
      return `${groups.begin}${groups.children}${groups.end}`;
    },
  );
}

// Docusaurus mdx1Compat.comments: HTML comments become MDX comments.
function htmlComments(content) {
  return content.replaceAll(/<!--(.*?)-->/gs, '{/*$1*/}');
}

function stripFrontMatter(content) {
  return content.replace(/^---\r?\n[\s\S]*?\r?\n---\r?\n/, '');
}

await compileAll(process.argv.slice(2), (raw) =>
  htmlComments(escapeMarkdownHeadingIds(unwrapMdxCodeBlocks(stripFrontMatter(raw)))),
);
