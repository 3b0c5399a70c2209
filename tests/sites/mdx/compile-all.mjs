// Compile MDX files with @mdx-js/mdx v3 and remark-directive (as Docusaurus
// does for admonitions) and print, one JSON line per file, the container
// directive names found in it; exit 1 on any compile error. ``prepare`` turns
// a file's text into what is compiled. Used by compile.mjs here and by
// tests/data/sites/docusaurus/compile.mjs.
import {readFile} from 'node:fs/promises';
import {compile} from '@mdx-js/mdx';
import remarkDirective from 'remark-directive';

function directives() {
  return (tree, file) => {
    const names = [];
    const walk = (node) => {
      if (node.type === 'containerDirective') names.push(node.name);
      for (const child of node.children || []) walk(child);
    };
    walk(tree);
    file.data.directives = names;
  };
}

export async function compileAll(paths, prepare = (text) => text) {
  let failed = false;
  for (const path of paths) {
    try {
      const value = prepare(await readFile(path, 'utf8'));
      const file = await compile({path, value}, {remarkPlugins: [remarkDirective, directives]});
      console.log(JSON.stringify({path, directives: file.data.directives}));
    } catch (error) {
      failed = true;
      console.error(`${path}: ${error.message}`);
    }
  }
  process.exit(failed ? 1 : 0);
}
