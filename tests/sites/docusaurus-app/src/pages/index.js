// The home page the theme's navbar links to.
import React from 'react';

export default function Home() {
  return <main>Home</main>;
}
