import { createApp } from 'vue';
import ChatApp from './ChatApp.vue';
import './chat.css';

createApp(ChatApp).mount('#app');
