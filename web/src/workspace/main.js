import { createApp } from 'vue';
import {
  ElAlert, ElBadge, ElButton, ElConfigProvider, ElDialog, ElDrawer, ElDropdown, ElDropdownItem, ElDropdownMenu,
  ElEmpty, ElForm, ElFormItem, ElInput, ElOption, ElRadioButton, ElRadioGroup, ElRate, ElSelect, ElSwitch,
  ElTabPane, ElTabs, ElTag, ElTooltip,
} from 'element-plus';
import 'element-plus/dist/index.css';
import App from './App.vue';
import './workspace.css';

const app = createApp(App);
for (const c of [ElAlert, ElBadge, ElButton, ElConfigProvider, ElDialog, ElDrawer, ElDropdown, ElDropdownItem, ElDropdownMenu,
  ElEmpty, ElForm, ElFormItem, ElInput, ElOption, ElRadioButton, ElRadioGroup, ElRate, ElSelect, ElSwitch,
  ElTabPane, ElTabs, ElTag, ElTooltip]) app.use(c);
app.mount('#app');
