// Compile each MDX file named on the command line with @mdx-js/mdx v3 (and
// remark-directive, as Docusaurus does for admonitions); print the container
// directive names found in each, one JSON line per file. Exit 1 on any error.
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

let failed = false;
for (const path of process.argv.slice(2)) {
  try {
    const file = await compile({path, value: await readFile(path, 'utf8')}, {
      remarkPlugins: [remarkDirective, directives],
    });
    console.log(JSON.stringify({path, directives: file.data.directives}));
  } catch (error) {
    failed = true;
    console.error(`${path}: ${error.message}`);
  }
}
process.exit(failed ? 1 : 0);
